// Sessions and password: where I am signed in (GET /auth/sessions), ending one or all the others, a
// password change, which ends every other session (PUT /auth/users/me/password), and deleting my account
// (DELETE /auth/users/me), confirmed by my password.

import { ApiError } from "../api.js";
import { h } from "../dom.js";
import { fullTimeLabel } from "../format.js";
import { dialogShell } from "./dialogs.js";

// A labelled input with the line under it that names what is wrong with it.
function passwordField(id, label, autocomplete) {
  const input = h("input", {
    id,
    type: "password",
    autocomplete,
    maxlength: "128",
    "aria-describedby": `${id}-error`,
  });
  const error = h("p", { id: `${id}-error`, class: "field-error" });
  const element = h("div", { class: "field" }, h("label", { for: id }, label), input, error);
  return {
    element,
    input,
    show(message) {
      error.textContent = message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    },
    clear() {
      error.textContent = "";
      input.removeAttribute("aria-invalid");
    },
    reset() {
      input.value = "";
      this.clear();
    },
  };
}

export function accountDialog({ api, onDeleted }) {
  const { dialog, error } = dialogShell("account", "Sessions and password");
  const status = h("p", { class: "hint", role: "status" });
  const list = h("ul", { class: "sessions", "aria-label": "Your sessions" });
  const endOthers = h(
    "button",
    { type: "button", class: "secondary", onclick: () => act(() => api.endOtherSessions()) },
    "End all other sessions",
  );
  const current = passwordField("account-current-password", "Current password", "current-password");
  const fresh = passwordField("account-new-password", "New password", "new-password");
  const change = h("button", { type: "submit", class: "primary" }, "Change password");
  const form = h(
    "form",
    { novalidate: true, onsubmit: (event) => changePassword(event) },
    h("h3", {}, "Change password"),
    current.element,
    fresh.element,
    h("div", { class: "dialog-actions" }, change),
  );
  const sessions = h(
    "section",
    { "aria-labelledby": "account-sessions" },
    h("h3", { id: "account-sessions" }, "Where you are signed in"),
    list,
    endOthers,
  );
  const confirm = passwordField("account-delete-password", "Your password, to confirm", "current-password");
  const remove = h("button", { type: "submit", class: "secondary danger" }, "Delete my account");
  const deletion = h(
    "form",
    { novalidate: true, onsubmit: (event) => deleteAccount(event) },
    h("h3", {}, "Delete account"),
    h(
      "p",
      { class: "hint" },
      "Your messages stay in their chats, shown as from “Deleted user”. Your username stays reserved.",
    ),
    confirm.element,
    h("div", { class: "dialog-actions" }, remove),
  );
  dialog.append(sessions, form, deletion, status, error);

  function row(session) {
    const when = h("span", { class: "session-when" }, `Signed in ${fullTimeLabel(session.created_at)}`);
    const name = h("span", { class: "session-device" }, session.device, session.current ? " (this device)" : "");
    const end = session.current
      ? null
      : h(
          "button",
          {
            type: "button",
            class: "link",
            "aria-label": `End the session on ${session.device}`,
            onclick: () => act(() => api.endSession(session.id)),
          },
          "End",
        );
    return h("li", { class: "session", dataset: { current: String(session.current) } }, name, when, end);
  }

  // The list as the server has it now; a failure is said in the dialog.
  async function load() {
    try {
      const sessions = await api.sessions();
      list.replaceChildren(...sessions.map(row));
      endOthers.hidden = sessions.length < 2;
    } catch (e) {
      error.textContent = e.message;
    }
  }

  async function act(action) {
    error.textContent = "";
    try {
      await action();
    } catch (e) {
      error.textContent = e.message;
    }
    await load();
  }

  async function changePassword(event) {
    event.preventDefault();
    error.textContent = "";
    status.textContent = "";
    current.clear();
    fresh.clear();
    change.disabled = true;
    try {
      await api.changePassword(current.input.value, fresh.input.value);
      current.reset();
      fresh.reset();
      status.textContent = "Password changed. Your other sessions have ended.";
      await load();
    } catch (e) {
      if (e instanceof ApiError && e.code === "wrong_password") current.show(e.message);
      else if (e instanceof ApiError && e.code === "password_invalid") fresh.show(e.message);
      else error.textContent = e.message;
    } finally {
      change.disabled = false;
    }
  }

  async function deleteAccount(event) {
    event.preventDefault();
    error.textContent = "";
    confirm.clear();
    remove.disabled = true;
    try {
      await api.deleteAccount(confirm.input.value);
      dialog.close();
      onDeleted();
    } catch (e) {
      if (e instanceof ApiError && e.code === "wrong_password") confirm.show(e.message);
      else error.textContent = e.message;
    } finally {
      remove.disabled = false;
    }
  }

  return {
    dialog,
    async open() {
      error.textContent = "";
      status.textContent = "";
      current.reset();
      fresh.reset();
      confirm.reset();
      list.replaceChildren();
      dialog.showModal();
      await load();
    },
  };
}
