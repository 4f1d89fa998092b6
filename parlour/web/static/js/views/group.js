// A group's members, with their presence, and what one may do with them: rename, add, change roles, remove,
// leave.
// The controls follow messaging's policy (parlour/messaging/domain/policy.py): admins rename, add members
// and remove plain members; owners do anything, roles included; anyone may leave. The server decides:
// a refusal (the last owner leaving, say) is shown as its message.

import { h } from "../dom.js";
import { presenceText } from "../format.js";
import { dialogShell, userSearch } from "./dialogs.js";
import { avatarWithPresence } from "./presence.js";

const ROLES = ["owner", "admin", "member"];
const ROLE_NAMES = { owner: "Owner", admin: "Admin", member: "Member" };
const RANK = { owner: 3, admin: 2, member: 1 };

export function groupDialog({ api, store, leave: leaveChat, onOpen }) {
  const { dialog, error } = dialogShell("group-members", "Members");
  const renameField = h("input", { id: "group-rename", type: "text", maxlength: "128", autocomplete: "off" });
  const renameButton = h("button", { type: "submit", class: "secondary" }, "Rename");
  const renameForm = h(
    "form",
    { class: "field inline-form", onsubmit: (event) => rename(event) },
    h("label", { for: "group-rename" }, "New name for the group"),
    renameField,
    renameButton,
  );
  const list = h("ul", { class: "members", "aria-label": "Members of the group" });
  const search = userSearch({
    api,
    store,
    id: "group-add",
    label: "Add someone",
    actionLabel: "Add",
    exclude: () => new Set(current()?.memberIds ?? []),
    onPick: (user) =>
      act(async () => {
        store.upsertChat(await api.addMember(chatId, user.id));
        search.reset();
        search.input.focus();
      }),
  });
  const leave = h("button", { type: "button", class: "link danger", onclick: () => leaveGroup() }, "Leave group");
  dialog.append(renameForm, list, search.element, error, h("div", { class: "dialog-actions" }, leave));
  let chatId = null;

  function current() {
    return chatId ? store.chats.get(chatId) : null;
  }

  function myRole(chat) {
    return chat.roles.get(store.me.id) ?? "member";
  }

  function rankOf(chat, userId) {
    return RANK[chat.roles.get(userId) ?? "member"];
  }

  function render() {
    const chat = current();
    if (!chat || !dialog.open) return;
    const mine = myRole(chat);
    renameForm.hidden = RANK[mine] < RANK.admin;
    search.element.hidden = RANK[mine] < RANK.admin;
    if (document.activeElement !== renameField) renameField.value = chat.title ?? "";
    const people = [...chat.memberIds].sort(
      (a, b) => rankOf(chat, b) - rankOf(chat, a) || store.nameOf(a).localeCompare(store.nameOf(b)),
    );
    list.replaceChildren(...people.map((userId) => memberRow(chat, mine, userId)));
  }

  function memberRow(chat, mine, userId) {
    const role = chat.roles.get(userId) ?? "member";
    const user = store.users.get(userId);
    const name = store.nameOf(userId);
    const self = userId === store.me.id;
    const presence = self ? null : store.presenceOf(userId);
    const status = presenceText(presence);
    const canRemove = !self && (mine === "owner" || (mine === "admin" && role === "member"));
    const roleControl =
      mine === "owner" && !self
        ? h(
            "select",
            { "aria-label": `Role of ${name}`, onchange: (event) => changeRole(userId, event.target.value) },
            ...ROLES.map((value) => h("option", { value, selected: value === role }, ROLE_NAMES[value])),
          )
        : h("span", { class: "member-role" }, ROLE_NAMES[role]);
    return h(
      "li",
      { class: "member", dataset: { userId } },
      avatarWithPresence(name, userId, undefined, presence),
      h("span", { class: "person-name" }, self ? `${name} (you)` : name),
      user ? h("span", { class: "person-handle" }, `@${user.username}`) : null,
      status ? h("span", { class: "member-presence" }, status) : null,
      roleControl,
      canRemove
        ? h("button", { type: "button", class: "icon-button", "aria-label": `Remove ${name}`, onclick: () => remove(userId) }, "×")
        : null,
    );
  }

  async function act(change) {
    error.textContent = "";
    try {
      await change();
    } catch (e) {
      error.textContent = e.message;
      render(); // a refused role change puts the select back
    }
  }

  function rename(event) {
    event.preventDefault();
    const title = renameField.value.trim();
    if (!title || title === current()?.title) return;
    act(async () => store.upsertChat(await api.renameChat(chatId, title)));
  }

  function changeRole(userId, role) {
    act(async () => store.upsertChat(await api.changeRole(chatId, userId, role)));
  }

  function remove(userId) {
    act(async () => {
      await api.removeMember(chatId, userId);
      store.upsertChat(await api.chat(chatId));
    });
  }

  function leaveGroup() {
    const id = chatId;
    act(async () => {
      await leaveChat(id);
      dialog.close();
    });
  }

  // "presence" also ticks while nothing changes, so "last seen 5 min ago" keeps counting (app.js); it waits
  // while a control in the list has focus (a role being chosen), which a new list would take away.
  const presenceChanged = () => list.contains(document.activeElement) || render();
  const off = [store.on("chats", render), store.on("users", render), store.on("presence", presenceChanged)];
  dialog.addEventListener("close", () => {
    chatId = null;
  });

  return {
    dialog,
    open(id) {
      chatId = id;
      error.textContent = "";
      search.reset();
      dialog.showModal();
      onOpen(id); // the members' names, if some are not known yet
      render();
      (renameForm.hidden ? leave : renameField).focus();
    },
    dispose() {
      for (const stop of off) stop();
    },
  };
}
