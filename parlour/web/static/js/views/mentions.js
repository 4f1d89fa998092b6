// `@` in the composer offers the chat's members: a listbox under the box's control (the combobox
// pattern), Up and Down to move, Enter or Tab to take one, Escape to leave it. Taking one writes
// `@username ` in place of what was typed, which is what messaging reads as a mention.

import { h } from "../dom.js";
import { mentionBeingTyped } from "../format.js";

const SHOWN = 6;

export function mentionPicker({ composer, candidates }) {
  const list = h("ul", { id: "mention-options", class: "mention-options", role: "listbox", "aria-label": "Mention someone", hidden: true });
  composer.setAttribute("aria-autocomplete", "list");
  composer.setAttribute("aria-controls", "mention-options");
  let options = [];
  let active = 0;
  let typed = null;

  function update() {
    typed = mentionBeingTyped(composer.value, composer.selectionStart ?? composer.value.length);
    const prefix = typed?.prefix.toLowerCase();
    options = typed
      ? candidates()
          .filter((person) => person.username.startsWith(prefix) || person.name.toLowerCase().startsWith(prefix))
          .slice(0, SHOWN)
      : [];
    active = Math.min(active, Math.max(options.length - 1, 0));
    render();
  }

  function render() {
    list.hidden = options.length === 0;
    composer.setAttribute("aria-expanded", options.length ? "true" : "false");
    list.replaceChildren(
      ...options.map((person, index) =>
        h(
          "li",
          {
            id: `mention-option-${index}`,
            role: "option",
            "aria-selected": index === active ? "true" : "false",
            // mousedown, not click: the box must keep its focus and caret
            onmousedown: (event) => {
              event.preventDefault();
              take(index);
            },
          },
          h("span", { class: "person-name" }, person.name),
          h("span", { class: "person-handle" }, ` @${person.username}`),
        ),
      ),
    );
    if (options.length) composer.setAttribute("aria-activedescendant", `mention-option-${active}`);
    else composer.removeAttribute("aria-activedescendant");
  }

  function take(index) {
    const person = options[index];
    if (!person || !typed) return;
    const caret = composer.selectionStart ?? composer.value.length;
    const inserted = `@${person.username} `;
    composer.value = composer.value.slice(0, typed.start) + inserted + composer.value.slice(caret);
    const at = typed.start + inserted.length;
    composer.setSelectionRange(at, at);
    close();
    composer.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function close() {
    options = [];
    active = 0;
    render();
  }

  // The composer's keys while the list is open; true if the key was the list's.
  function handleKey(event) {
    if (!options.length) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      active = (active + (event.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
      render();
    } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      take(active);
    } else if (event.key === "Escape") {
      close();
    } else return false;
    event.preventDefault();
    event.stopPropagation(); // Escape here closes the list, not the dialog or the chat
    return true;
  }

  composer.addEventListener("input", update);
  composer.addEventListener("click", update);
  composer.addEventListener("blur", close);
  return { element: list, handleKey, close };
}
