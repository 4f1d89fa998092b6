// Modal dialogs: start a direct chat by username, create a group and pick its members (and the shell
// other dialogs use: views/notifications.js).
// Native <dialog>: focus moves in, stays in, Escape closes, focus returns to the opener.

import { ApiError } from "../api.js";
import { avatar, debounce, h } from "../dom.js";

// A search box for people, with its results as a list of buttons (also views/group.js).
export function userSearch({ api, store, id, label, actionLabel, onPick, exclude = () => new Set() }) {
  const input = h("input", {
    id,
    type: "search",
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    placeholder: "Type a username",
    "aria-describedby": `${id}-status`,
    "aria-controls": `${id}-results`,
  });
  const status = h("p", { id: `${id}-status`, class: "hint", "aria-live": "polite" });
  const results = h("ul", { id: `${id}-results`, class: "people", "aria-label": "People found" });
  let last = "";

  const search = debounce(async () => {
    const q = input.value.trim().toLowerCase();
    last = q;
    if (!q) {
      results.replaceChildren();
      status.textContent = "";
      return;
    }
    try {
      const found = (await api.searchUsers(q, 10)).filter((u) => u.id !== store.me.id && !exclude().has(u.id));
      if (q !== last) return;
      store.rememberUsers(found);
      render(found);
      status.textContent = found.length ? `${found.length} found` : `No one called “${q}”.`;
    } catch (error) {
      status.textContent = error instanceof ApiError ? error.message : "Search failed.";
    }
  }, 200);

  function render(people) {
    results.replaceChildren(
      ...people.map((user) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "person",
              "aria-label": `${actionLabel} ${user.display_name || user.username} (@${user.username})`,
              onclick: () => onPick(user),
            },
            avatar(user.display_name || user.username, user.id),
            h("span", { class: "person-name" }, user.display_name || user.username),
            h("span", { class: "person-handle" }, `@${user.username}`),
          ),
        ),
      ),
    );
  }

  input.addEventListener("input", search);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      results.querySelector("button")?.focus();
    } else if (event.key === "Enter") {
      event.preventDefault(); // never submits a surrounding form: Enter picks the first person found
      results.querySelector("button")?.click();
    }
  });
  results.addEventListener("keydown", (event) => moveFocus(event, results, input));
  const reset = () => {
    input.value = "";
    results.replaceChildren();
    status.textContent = "";
  };
  return { input, element: h("div", { class: "field" }, h("label", { for: id }, label), input, status, results), reset };
}

// Arrow keys move between the buttons of a list; Up from the first returns to `back`.
function moveFocus(event, list, back) {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const buttons = [...list.querySelectorAll("button")];
  const index = buttons.indexOf(document.activeElement);
  if (index < 0) return;
  event.preventDefault();
  const next = event.key === "ArrowDown" ? buttons[index + 1] : buttons[index - 1];
  (next ?? (event.key === "ArrowUp" ? back : buttons[index])).focus();
}

export function dialogShell(id, title) {
  const error = h("p", { class: "form-error", role: "alert" });
  const close = h("button", { type: "button", class: "icon-button close", "aria-label": "Close" }, "×");
  const dialog = h(
    "dialog",
    { id, "aria-labelledby": `${id}-title` },
    h("header", { class: "dialog-header" }, h("h2", { id: `${id}-title` }, title), close),
  );
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => event.target === dialog && dialog.close()); // the backdrop
  // Escape closes even from a search box (where the browser would first only clear the text)
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      dialog.close();
    }
  });
  return { dialog, error };
}

export function newDirectDialog({ api, store, onChat }) {
  const { dialog, error } = dialogShell("new-direct", "New chat");
  const search = userSearch({
    api,
    store,
    id: "direct-search",
    label: "Find someone by username",
    actionLabel: "Chat with",
    onPick: async (user) => {
      error.textContent = "";
      try {
        const chat = await api.createDirect(user.id);
        dialog.close();
        onChat(chat);
      } catch (e) {
        error.textContent = e.message;
      }
    },
  });
  dialog.append(search.element, error);
  return {
    dialog,
    open() {
      search.reset();
      error.textContent = "";
      dialog.showModal();
      search.input.focus();
    },
  };
}

export function newGroupDialog({ api, store, onChat }) {
  const { dialog, error } = dialogShell("new-group", "New group");
  const picked = new Map();
  const title = h("input", { id: "group-title", type: "text", maxlength: "128", required: true, autocomplete: "off" });
  const titleError = h("p", { id: "group-title-error", class: "field-error" });
  title.setAttribute("aria-describedby", "group-title-error");
  const chosen = h("ul", { class: "chips", "aria-label": "Members to add" });
  const chosenNote = h("p", { class: "hint", "aria-live": "polite" });
  const create = h("button", { type: "submit", class: "primary" }, "Create group");
  const search = userSearch({
    api,
    store,
    id: "group-search",
    label: "Add members",
    actionLabel: "Add",
    exclude: () => new Set(picked.keys()),
    onPick: (user) => {
      picked.set(user.id, user);
      renderChosen();
      search.reset();
      search.input.focus();
    },
  });

  function renderChosen() {
    chosen.replaceChildren(
      ...[...picked.values()].map((user) =>
        h(
          "li",
          { class: "chip" },
          h("span", {}, user.display_name || user.username),
          h(
            "button",
            {
              type: "button",
              class: "icon-button",
              "aria-label": `Remove ${user.display_name || user.username}`,
              onclick: () => {
                picked.delete(user.id);
                renderChosen();
                search.input.focus();
              },
            },
            "×",
          ),
        ),
      ),
    );
    const n = picked.size;
    chosenNote.textContent = n ? `${n} member${n === 1 ? "" : "s"} besides you.` : "Only you so far.";
  }

  const form = h(
    "form",
    {
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        titleError.textContent = "";
        title.removeAttribute("aria-invalid");
        if (!title.value.trim()) {
          titleError.textContent = "Give the group a name.";
          title.setAttribute("aria-invalid", "true");
          title.focus();
          return;
        }
        create.disabled = true;
        try {
          const chat = await api.createGroup(title.value.trim(), [...picked.keys()]);
          dialog.close();
          onChat(chat);
        } catch (e) {
          if (e instanceof ApiError && e.code === "chat_title_invalid") {
            titleError.textContent = e.message;
            title.setAttribute("aria-invalid", "true");
            title.focus();
          } else error.textContent = e.message;
        } finally {
          create.disabled = false;
        }
      },
    },
    h("div", { class: "field" }, h("label", { for: "group-title" }, "Group name"), title, titleError),
    search.element,
    chosen,
    chosenNote,
    error,
    h("div", { class: "dialog-actions" }, create),
  );
  dialog.append(form);
  return {
    dialog,
    open() {
      picked.clear();
      title.value = "";
      titleError.textContent = "";
      error.textContent = "";
      search.reset();
      renderChosen();
      dialog.showModal();
      title.focus();
    },
  };
}
