// My profile: the display name others see (PATCH /auth/users/me; the same rules as at sign-up), and my
// picture (PUT / DELETE /auth/users/me/avatar: auth decodes it, strips what is not pixels, shrinks it).

import { ApiError } from "../api.js";
import { avatar, h } from "../dom.js";
import { dialogShell } from "./dialogs.js";

const PICTURE_TYPES = "image/png,image/jpeg,image/webp";
const PICTURE_MAX_BYTES = 2 * 1024 * 1024; // AVATAR_MAX_BYTES, parlour/common/http/limits.py

export function profileDialog({ api, store }) {
  const { dialog, error } = dialogShell("profile", "Your profile");
  const preview = h("span", { class: "profile-picture" });
  const file = h("input", {
    id: "profile-picture",
    type: "file",
    accept: PICTURE_TYPES,
    "aria-describedby": "profile-picture-error",
  });
  const pictureError = h("p", { id: "profile-picture-error", class: "field-error" });
  const removePicture = h(
    "button",
    { type: "button", class: "link danger", onclick: () => changePicture(() => api.removeAvatar()) },
    "Remove picture",
  );
  file.addEventListener("change", () => {
    const chosen = file.files[0];
    if (!chosen) return;
    // the server refuses more before reading it; saying so here spares the upload
    if (chosen.size > PICTURE_MAX_BYTES) showPictureError("A picture is at most 2 MB.");
    else changePicture(() => api.setAvatar(chosen));
  });
  const picture = h(
    "div",
    { class: "field" },
    h("label", { for: "profile-picture" }, "Your picture (PNG, JPEG or WebP, at most 2 MB)"),
    h("div", { class: "picture-row" }, preview, file, removePicture),
    pictureError,
  );
  const name = h("input", { id: "profile-name", type: "text", maxlength: "64", autocomplete: "name" });
  const nameError = h("p", { id: "profile-name-error", class: "field-error" });
  name.setAttribute("aria-describedby", "profile-name-error");
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const form = h(
    "form",
    { novalidate: true, onsubmit: (event) => submit(event) },
    h("div", { class: "field" }, h("label", { for: "profile-name" }, "Your name"), name, nameError),
    error,
    h("div", { class: "dialog-actions" }, save),
  );
  dialog.append(picture, form);

  function showPicture() {
    const me = store.me;
    preview.replaceChildren(avatar(me?.display_name ?? "", me?.id ?? ""));
    removePicture.hidden = !me?.avatar_url;
  }

  async function changePicture(change) {
    pictureError.textContent = "";
    file.removeAttribute("aria-invalid");
    try {
      store.updateMe(await change());
      showPicture();
    } catch (e) {
      showPictureError(e.message);
    } finally {
      file.value = "";
    }
  }

  function showPictureError(message) {
    pictureError.textContent = message;
    file.setAttribute("aria-invalid", "true");
    file.value = "";
  }

  async function submit(event) {
    event.preventDefault();
    error.textContent = "";
    nameError.textContent = "";
    name.removeAttribute("aria-invalid");
    save.disabled = true;
    try {
      store.updateMe(await api.updateMe(name.value));
      dialog.close();
    } catch (e) {
      if (e instanceof ApiError && e.code === "display_name_invalid") {
        nameError.textContent = e.message;
        name.setAttribute("aria-invalid", "true");
        name.focus();
      } else error.textContent = e.message;
    } finally {
      save.disabled = false;
    }
  }

  return {
    dialog,
    open() {
      name.value = store.me?.display_name ?? "";
      pictureError.textContent = "";
      file.removeAttribute("aria-invalid");
      showPicture();
      nameError.textContent = "";
      error.textContent = "";
      name.removeAttribute("aria-invalid");
      dialog.showModal();
      name.select();
    },
  };
}
