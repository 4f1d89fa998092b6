// The chat list: newest activity first, with the last message, its time, an unread badge, and in a direct
// chat the other person's presence (a dot on the avatar, the words at the end of the row's name).
// A chat I muted has a 🔕 after its title (and ", muted" in its name).

import { coalesce, h } from "../dom.js";
import { listTimeLabel, presenceText } from "../format.js";
import { avatarWithPresence, presenceSettingView } from "./presence.js";

function preview(store, chat) {
  const last = chat.lastMessage;
  if (!last) return chat.kind === "group" ? "New group" : "No messages yet";
  const who = last.senderId === store.me?.id ? "You: " : chat.kind === "group" ? `${store.nameOf(last.senderId)}: ` : "";
  return who + (last.deleted ? "Message deleted" : last.body.replace(/\s+/g, " "));
}

export function sidebarView({
  store,
  onNewChat,
  onNewGroup,
  onLogOut,
  onHidePresence,
  onNotifications,
  onProfile,
  onAccount,
}) {
  const list = h("ul", { class: "chat-list", "aria-label": "Your chats" });
  const empty = h(
    "p",
    { class: "empty" },
    "No chats yet. Start one with someone by their username, or create a group.",
  );
  const me = h("span", { class: "me-name" });
  const noticeText = h("span", {});
  const notice = h(
    "p",
    { class: "sidebar-notice", role: "status", hidden: true },
    noticeText,
    h("button", { type: "button", class: "icon-button", "aria-label": "Dismiss", onclick: () => (notice.hidden = true) }, "×"),
  );
  const setting = presenceSettingView({ store, onChange: onHidePresence });
  // shown once the notifications service answered (the mutes are known)
  const notifications = h("button", { type: "button", class: "link", onclick: onNotifications, hidden: true }, "Notifications");
  const element = h(
    "nav",
    { class: "sidebar", "aria-label": "Chats" },
    h(
      "header",
      { class: "sidebar-header" },
      h("h1", { class: "logo" }, "Parlour"),
      h("button", { type: "button", class: "link logout", onclick: onLogOut }, "Log out"),
    ),
    h("p", { class: "signed-in-as" }, "Signed in as ", me),
    setting.element,
    h(
      "p",
      { class: "sidebar-settings" },
      h("button", { type: "button", class: "link", onclick: onProfile }, "Name and picture"),
      h("button", { type: "button", class: "link", onclick: onAccount }, "Sessions and password"),
      notifications,
    ),
    h(
      "div",
      { class: "sidebar-actions" },
      h("button", { type: "button", class: "primary", onclick: onNewChat }, "New chat"),
      h("button", { type: "button", class: "secondary", onclick: onNewGroup }, "New group"),
    ),
    notice,
    list,
    empty,
  );

  function row(chat, now) {
    const title = store.titleOf(chat);
    const unread = store.openChatId === chat.id ? 0 : chat.unread;
    const when = chat.lastMessage?.createdAt ?? (chat.activityAt || null);
    const presence = chat.kind === "direct" ? store.presenceOf(store.peerOf(chat)) : null;
    const status = presenceText(presence, now);
    // one concise name for the link: who, how many unread, the last message and when, then presence
    const muted = store.isMuted(chat.id);
    const label = `${title}${muted ? ", muted" : ""}${unread ? `, ${unread} unread` : ""}. ${preview(store, chat)}${when ? `. ${listTimeLabel(when)}` : ""}${status ? `. ${status}` : ""}`;
    return h(
      "li",
      { dataset: { chatId: chat.id } },
      h(
        "a",
        {
          href: `#/chat/${encodeURIComponent(chat.id)}`,
          class: `chat-row${unread ? " has-unread" : ""}`,
          "aria-current": store.openChatId === chat.id ? "page" : null,
          "aria-label": label,
        },
        chat.kind === "group"
          ? avatarWithPresence(title, chat.id, "group", null)
          : avatarWithPresence(title, store.peerOf(chat) ?? chat.id, "", presence, now),
        h(
          "span",
          { class: "chat-row-main" },
          h(
            "span",
            { class: "chat-row-top" },
            h("span", { class: "chat-title" }, title),
            muted ? h("span", { class: "muted-mark", title: "Muted", "aria-hidden": "true" }, "🔕") : null,
            when ? h("time", { class: "chat-time", datetime: new Date(when).toISOString() }, listTimeLabel(when)) : null,
          ),
          h(
            "span",
            { class: "chat-row-bottom" },
            h("span", { class: "chat-preview" }, preview(store, chat)),
            unread ? h("span", { class: "badge", "aria-hidden": "true" }, unread > 99 ? "99+" : String(unread)) : null,
          ),
        ),
      ),
    );
  }

  function render() {
    notifications.hidden = store.mutedChats === null;
    me.textContent = store.me ? `${store.me.display_name || store.me.username} (@${store.me.username})` : "";
    const chats = store.sortedChats();
    const focusedId = document.activeElement?.closest?.(".chat-list li")?.dataset.chatId;
    const now = Date.now();
    list.replaceChildren(...chats.map((chat) => row(chat, now)));
    empty.hidden = chats.length > 0;
    if (focusedId) list.querySelector(`li[data-chat-id="${CSS.escape(focusedId)}"] a`)?.focus();
  }

  // Up and Down move between chats.
  list.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const links = [...list.querySelectorAll("a")];
    const index = links.indexOf(document.activeElement);
    if (index < 0) return;
    event.preventDefault();
    links[Math.max(0, Math.min(links.length - 1, index + (event.key === "ArrowDown" ? 1 : -1)))].focus();
  });

  const schedule = coalesce(render);
  const unsubscribe = [store.on("chats", schedule), store.on("users", schedule), store.on("presence", schedule), setting.dispose];
  render();
  return {
    element,
    render: schedule,
    dispose: () => unsubscribe.forEach((off) => off()),
    // A line above the chats until dismissed (a chat that went, and why).
    notice(text) {
      noticeText.textContent = text;
      notice.hidden = false;
    },
  };
}
