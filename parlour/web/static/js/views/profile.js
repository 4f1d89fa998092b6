// My profile: the display name others see (PATCH /auth/users/me; the same rules as at sign-up).

import { ApiError } from "../api.js";
import { h } from "../dom.js";
import { dialogShell } from "./dialogs.js";

export function profileDialog({ api, store }) {
  const { dialog, error } = dialogShell("profile", "Your profile");
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
  dialog.append(form);

  async function submit(event) {
    event.preventDefault();
    error.textContent = "";
    nameError.textContent = "";
    name.removeAttribute("aria-invalid");
    save.disabled = true;
    try {
      store.renameMe(await api.updateMe(name.value));
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
      nameError.textContent = "";
      error.textContent = "";
      name.removeAttribute("aria-invalid");
      dialog.showModal();
      name.select();
    },
  };
}
