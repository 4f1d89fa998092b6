// Log in and sign up: one form, two modes, errors shown next to the field they are about.

import { ApiError } from "../api.js";
import { h } from "../dom.js";

// Which field a problem code is about; anything else is shown above the button.
const FIELD_OF_CODE = {
  username_invalid: "username",
  username_taken: "username",
  password_invalid: "password",
  display_name_invalid: "display_name",
};

function field({ name, label, type = "text", autocomplete, hint, optional = false }) {
  const id = `auth-${name}`;
  const input = h("input", {
    id,
    name,
    type,
    autocomplete,
    required: !optional,
    autocapitalize: "none",
    spellcheck: "false",
    "aria-describedby": `${id}-error`,
  });
  const hintEl = hint ? h("p", { id: `${id}-hint`, class: "hint", hidden: true }, hint) : null;
  const error = h("p", { id: `${id}-error`, class: "field-error" });
  const wrapper = h(
    "div",
    { class: "field", dataset: { field: name } },
    h("label", { for: id }, label, optional ? h("span", { class: "optional" }, " (optional)") : null),
    input,
    hintEl,
    error,
  );
  // Hints are shown when signing up only; a screen reader hears the hint, then any error.
  const showHint = (shown) => {
    if (!hintEl) return;
    hintEl.hidden = !shown;
    input.setAttribute("aria-describedby", shown ? `${id}-hint ${id}-error` : `${id}-error`);
  };
  return { wrapper, input, error, showHint };
}

export function authView({ api, onSignedIn, notice = "" }) {
  let mode = "login";
  const username = field({
    name: "username",
    label: "Username",
    autocomplete: "username",
    hint: "3–32 characters: a–z, 0–9 and _ . -",
  });
  const displayName = field({
    name: "display_name",
    label: "Display name",
    autocomplete: "name",
    optional: true,
  });
  const password = field({
    name: "password",
    label: "Password",
    type: "password",
    autocomplete: "current-password",
    hint: "8 characters or more.",
  });
  const formError = h("p", { class: "form-error", role: "alert" }, notice);
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const heading = h("h2", { id: "auth-heading" }, "Log in");
  const switchText = h("span");
  const switchButton = h("button", { type: "button", class: "link", onclick: () => setMode(mode === "login" ? "signup" : "login") });
  const fields = { username, display_name: displayName, password };

  const form = h(
    "form",
    { class: "auth-form", novalidate: true, "aria-labelledby": "auth-heading", onsubmit: (e) => submitForm(e) },
    heading,
    username.wrapper,
    displayName.wrapper,
    password.wrapper,
    formError,
    submit,
    h("p", { class: "switch" }, switchText, " ", switchButton),
  );

  function setMode(next) {
    mode = next;
    const signup = mode === "signup";
    heading.textContent = signup ? "Create an account" : "Log in";
    submit.textContent = signup ? "Sign up" : "Log in";
    switchText.textContent = signup ? "Already have an account?" : "New to Parlour?";
    switchButton.textContent = signup ? "Log in" : "Create an account";
    displayName.wrapper.hidden = !signup;
    password.input.autocomplete = signup ? "new-password" : "current-password";
    username.showHint(signup);
    password.showHint(signup);
    clearErrors();
    formError.textContent = "";
    username.input.focus();
  }

  function clearErrors() {
    for (const f of Object.values(fields)) {
      f.error.textContent = "";
      f.input.removeAttribute("aria-invalid");
    }
    formError.textContent = "";
  }

  function showError(name, message) {
    const f = fields[name];
    if (!f || f.wrapper.hidden) {
      formError.textContent = message;
      return;
    }
    f.error.textContent = message;
    f.input.setAttribute("aria-invalid", "true");
  }

  function check() {
    let ok = true;
    if (!username.input.value.trim()) {
      showError("username", "Enter a username.");
      ok = false;
    }
    if (!password.input.value) {
      showError("password", "Enter a password.");
      ok = false;
    }
    return ok;
  }

  function explain(error) {
    if (!(error instanceof ApiError)) {
      formError.textContent = "Something went wrong. Try again.";
      return;
    }
    if (error.code === "too_many_login_attempts" && error.retryAfter) {
      formError.textContent = `Too many attempts. Try again in ${error.retryAfter} s.`;
      return;
    }
    const named = FIELD_OF_CODE[error.code];
    if (named) return showError(named, error.message);
    const located = error.errors.filter((e) => Array.isArray(e.location) && fields[e.location.at(-1)]);
    if (located.length) {
      for (const e of located) showError(e.location.at(-1), e.message);
      return;
    }
    formError.textContent = error.message;
  }

  async function submitForm(event) {
    event.preventDefault();
    clearErrors();
    if (!check()) {
      form.querySelector("[aria-invalid=true]")?.focus();
      return;
    }
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    const name = username.input.value.trim().toLowerCase();
    try {
      if (mode === "signup") {
        await api.signUp({ username: name, password: password.input.value, displayName: displayName.input.value.trim() });
      }
      await api.logIn(name, password.input.value);
      await onSignedIn();
    } catch (error) {
      explain(error);
      form.querySelector("[aria-invalid=true]")?.focus();
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  }

  const root = h(
    "main",
    { class: "auth", id: "main" },
    h("div", { class: "brand" }, h("h1", {}, "Parlour"), h("p", { class: "tagline" }, "Chat, live.")),
    form,
  );
  setMode("login");
  formError.textContent = notice;
  queueMicrotask(() => username.input.focus());
  return root;
}
