// Reactions on a message: the row of emoji under its body (each with its count, mine pressed; a click puts
// mine on or takes it off) and the picker the message's "React" action opens.

import { h } from "../dom.js";

// The emoji the server offers, in its order: a copy of REACTIONS in parlour/messaging/domain/model.py,
// which a test holds this line to.
export const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🎉"];

function mine(reaction, me) {
  return reaction.userIds.includes(me);
}

// What a message's reactions look like (for telling whether it must be drawn again).
export function reactionsSig(message) {
  return (message.reactions ?? []).map((r) => `${r.emoji}:${r.userIds.join(",")}`).join(";");
}

// The row under a message's body; null when nobody reacted. `toggle(emoji, on)` puts mine on or off.
export function reactionsRow({ message, me, nameOf, toggle }) {
  const reactions = message.reactions ?? [];
  if (!reactions.length || message.deleted) return null;
  return h(
    "div",
    { class: "reactions", role: "group", "aria-label": "Reactions" },
    reactions.map((reaction) => {
      const pressed = mine(reaction, me);
      const names = reaction.userIds.map((id) => (id === me ? "you" : nameOf(id))).join(", ");
      return h(
        "button",
        {
          type: "button",
          class: "reaction",
          "aria-pressed": pressed ? "true" : "false",
          "aria-label": `Reaction ${reaction.emoji}: ${reaction.userIds.length}`,
          title: `${reaction.emoji} ${names}`,
          dataset: { focusKey: `reaction:${reaction.emoji}` },
          onclick: () => toggle(reaction.emoji, !pressed),
        },
        h("span", { "aria-hidden": "true" }, reaction.emoji),
        h("span", { class: "count", "aria-hidden": "true" }, String(reaction.userIds.length)),
      );
    }),
  );
}

// The "React" action in `box` (a message's actions): opens the offered emoji in its place; picking one
// puts it on (or takes mine off), Escape or "Close" goes back. `restore()` puts the actions back.
export function reactButton({ box, message, me, toggle, restore }) {
  const button = h(
    "button",
    { type: "button", class: "link", "aria-label": "Add reaction", "aria-expanded": "false", dataset: { focusKey: "react" } },
    "React",
  );
  button.addEventListener("click", () => {
    const back = () => {
      restore();
      box.classList.remove("visible");
      button.focus();
    };
    const chosen = new Set((message.reactions ?? []).filter((r) => mine(r, me)).map((r) => r.emoji));
    const options = REACTIONS.map((emoji) =>
      h(
        "button",
        {
          type: "button",
          class: "reaction-option",
          "aria-label": `React with ${emoji}`,
          "aria-pressed": chosen.has(emoji) ? "true" : "false",
          onclick: () => {
            toggle(emoji, !chosen.has(emoji));
            back();
          },
        },
        emoji,
      ),
    );
    const close = h("button", { type: "button", class: "link", onclick: back }, "Close");
    const picker = h("div", { class: "reaction-picker", role: "group", "aria-label": "Pick a reaction" }, options, close);
    picker.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.preventDefault();
      event.stopPropagation();
      back();
    });
    box.classList.add("visible");
    box.replaceChildren(picker);
    options[0].focus();
  });
  return button;
}
