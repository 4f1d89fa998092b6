// Presence on screen: the dot on an avatar (a filled dot online, a ring away, none offline: the shape
// differs, not only the colour, and the words go with it), and the "Hide my presence" setting.

import { avatar, h } from "../dom.js";
import { presenceText } from "../format.js";

// An avatar with the presence dot of `presence` (null: nothing known, no dot).
export function avatarWithPresence(name, id, extraClass, presence, now = Date.now()) {
  const status = presence?.status;
  const dot =
    status === "online" || status === "away"
      ? h("span", { class: "presence-dot", dataset: { status }, title: presenceText(presence, now) })
      : null;
  return h(
    "span",
    { class: "avatar-wrap", dataset: { presence: status ?? "unknown" }, "aria-hidden": "true" },
    avatar(name, id, extraClass),
    dot,
  );
}

// The setting, on GET/PUT /api/presence/settings through `onChange(hidden)` (a promise). Shown once the
// setting is known: without the presence service there is nothing to hide.
export function presenceSettingView({ store, onChange }) {
  const box = h("input", { type: "checkbox", id: "hide-presence", "aria-describedby": "hide-presence-hint" });
  const error = h("p", { class: "field-error", role: "alert" });
  const element = h(
    "div",
    { class: "presence-setting", hidden: true },
    h("label", { for: "hide-presence" }, box, " Hide my presence"),
    h("p", { id: "hide-presence-hint", class: "hint" }, "Others see you as offline, with no last seen."),
    error,
  );

  box.addEventListener("change", async () => {
    const wanted = box.checked;
    box.disabled = true;
    error.textContent = "";
    try {
      await onChange(wanted);
    } catch {
      box.checked = !wanted;
      error.textContent = "Could not change the setting. Try again.";
    } finally {
      box.disabled = false;
    }
  });

  function render() {
    element.hidden = store.presenceHidden === null;
    box.checked = store.presenceHidden === true;
  }

  const off = store.on("presence-settings", render);
  render();
  return { element, dispose: off };
}
