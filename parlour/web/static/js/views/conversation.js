// One conversation: history (older pages load as you scroll up), day separators, own messages on the
// right with their state (waiting → sending → sent → read), edits and deletions, reactions, replies (a quote
// above the reply, which leads to the message it answers), typing, and the composer.

import { avatar, coalesce, h, throttle } from "../dom.js";
import { BODY_MAX, bodyParts, codePoints, dayKey, dayLabel, fullTimeLabel, presenceText, timeLabel } from "../format.js";
import { mentionPicker } from "./mentions.js";
import { muteButton } from "./notifications.js";
import { reactButton, reactionsRow, reactionsSig } from "./reactions.js";
import { avatarWithPresence } from "./presence.js";

const NEAR_BOTTOM_PX = 80;
const NEAR_TOP_PX = 150;
const TYPING_EVERY_MS = 3_000;
const QUOTE_CHARACTERS = 90;
const FLASH_MS = 1_600;

const STATE_TEXT = {
  queued: ["◷", "Waiting for the connection"],
  sending: ["◷", "Sending"],
  failed: ["!", "Not sent"],
  sent: ["✓", "Sent"],
  read: ["✓✓", "Read"],
};

function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

// Put `nodes` in `parent` in this order, moving as little as possible (so focus and scroll survive).
function reconcile(parent, nodes) {
  let ref = parent.firstChild;
  for (const node of nodes) {
    if (node === ref) {
      ref = ref.nextSibling;
      continue;
    }
    parent.insertBefore(node, ref);
  }
  while (ref) {
    const next = ref.nextSibling;
    ref.remove();
    ref = next;
  }
}

const PICK_A_CHAT = "Pick a chat on the left, or start a new one.";

export function conversationView({ store, actions }) {
  let chatId = null;
  let nodes = new Map(); // key → element
  let replyingTo = null; // the quote of the message the composer answers, or null

  const title = h("h2", { id: "conversation-title", class: "conversation-title", tabindex: "-1" });
  const subtitle = h("p", { class: "conversation-subtitle" });
  const membersButton = h("button", {
    type: "button",
    class: "link members-link",
    "aria-haspopup": "dialog",
    onclick: () => chatId && actions.openMembers(chatId),
  });
  const headerAvatar = h("span", { class: "header-avatar" });
  const mute = muteButton({ store, onToggle: actions.setMuted });
  const historyStatus = h("p", { class: "history-status", "aria-live": "polite" });
  const list = h("ol", { class: "message-list", "aria-labelledby": "conversation-title" });
  const scroller = h(
    "div",
    { class: "messages", role: "log", "aria-label": "Messages", "aria-relevant": "additions", tabindex: "0" },
    historyStatus,
    list,
  );
  const typing = h("p", { class: "typing", "aria-live": "polite" });
  const composer = h("textarea", {
    id: "composer",
    rows: "1",
    placeholder: "Write a message",
    "aria-describedby": "composer-count composer-help",
    autocomplete: "off",
  });
  const mentions = mentionPicker({ composer, candidates: () => mentionable() });
  const count = h("span", { id: "composer-count", class: "count" });
  const countAlert = h("span", { class: "visually-hidden", "aria-live": "polite" });
  const send = h("button", { type: "submit", class: "primary send" }, "Send");
  const replyText = h("span", { class: "reply-text" });
  const cancelReply = h("button", { type: "button", class: "icon-button", "aria-label": "Cancel reply", onclick: () => stopReply(true) }, "×");
  const replyBar = h("div", { class: "reply-bar", hidden: true }, replyText, cancelReply);
  const form = h(
    "form",
    { class: "composer", onsubmit: (event) => submit(event) },
    mentions.element,
    replyBar,
    h("label", { for: "composer", class: "visually-hidden" }, "Message"),
    composer,
    send,
    count,
    countAlert,
    h("p", { id: "composer-help", class: "visually-hidden" }, "Enter sends. Shift and Enter starts a new line."),
  );
  const pane = h(
    "section",
    { class: "conversation", "aria-labelledby": "conversation-title", hidden: true },
    h(
      "header",
      { class: "conversation-header" },
      h("a", { href: "#/", class: "back icon-button", "aria-label": "Back to chats" }, "‹"),
      headerAvatar,
      h("div", { class: "conversation-heading" }, title, subtitle),
      mute.element,
    ),
    scroller,
    typing,
    form,
  );
  const placeholderText = h("p", {}, PICK_A_CHAT);
  const backToChats = h("a", { href: "#/", class: "back-to-chats", hidden: true }, "Back to chats");
  const placeholder = h(
    "section",
    { class: "no-conversation", "aria-label": "No chat open" },
    placeholderText,
    backToChats,
  );
  const element = h("main", { class: "main-pane", id: "main" }, pane, placeholder);

  // --- rendering ---

  function chat() {
    return chatId ? store.chats.get(chatId) : null;
  }

  // The other members, for `@`: those whose names are known.
  function mentionable() {
    const c = chat();
    if (!c) return [];
    return c.memberIds
      .filter((id) => id !== store.me?.id && store.users.has(id))
      .map((id) => ({ username: store.users.get(id).username, name: store.nameOf(id) }));
  }

  // A body as text, with its http(s) addresses as links (which open apart from the app and tell the
  // other site nothing of where they came from) and its mentions of members marked, mine apart.
  function bodyNodes(body) {
    const c = chat();
    // the members' usernames, only for a body that can mention one
    const usernames = body.includes("@") ? new Set((c?.memberIds ?? []).map((id) => store.users.get(id)?.username)) : null;
    return bodyParts(body, (name) => usernames?.has(name) ?? false).map((part) => {
      if (part.href) return h("a", { href: part.href, target: "_blank", rel: "noopener noreferrer" }, part.text);
      if (part.mention === store.me?.username) return h("span", { class: "mention", dataset: { self: "true" } }, part.text);
      if (part.mention) return h("span", { class: "mention" }, part.text);
      return part.text;
    });
  }

  function ownState(c, message) {
    return store.readersOf(c, message.seq) > 0 ? "read" : "sent";
  }

  function items(c) {
    const out = [];
    let day = null;
    const pushDay = (when) => {
      const key = dayKey(when);
      if (key !== day) {
        day = key;
        out.push({ key: `d:${key}`, kind: "day", when, sig: dayLabel(when) });
      }
    };
    for (const message of store.sortedMessages(c)) {
      pushDay(message.createdAt);
      const own = message.senderId === store.me.id;
      const state = own ? ownState(c, message) : null;
      const readers = own && c.kind === "group" ? store.readersOf(c, message.seq) : 0;
      // a body with an `@` is drawn again once more people are known: its mentions are marked by username
      const known = message.body.includes("@") ? store.users.size : 0;
      const quote = message.replyTo ? quoteWords(c, message.replyTo).join(": ") : "";
      const sig = [message.body, message.editedAt, message.deleted, state, readers, store.nameOf(message.senderId), known, reactionsSig(message), quote].join("|");
      out.push({ key: `m:${message.seq}`, kind: "message", message, own, state, readers, sig });
    }
    for (const entry of store.outboxOf(c.id)) {
      pushDay(entry.createdAt);
      const quote = entry.replyTo ? quoteWords(c, entry.replyTo).join(": ") : "";
      out.push({ key: `p:${entry.clientId}`, kind: "pending", entry, sig: `${entry.state}|${entry.reason ?? ""}|${quote}` });
    }
    return out;
  }

  function renderDay(item) {
    return h(
      "li",
      { class: "day", role: "separator", "aria-label": item.sig },
      h("span", {}, item.sig),
    );
  }

  function stateMark(state, readers, group) {
    const [symbol, text] = STATE_TEXT[state];
    const label = state === "read" && group ? `Read by ${readers}` : text;
    return h("span", { class: `state state-${state}`, title: label }, h("span", { "aria-hidden": "true" }, symbol), h("span", { class: "visually-hidden" }, label));
  }

  function renderMessage(item) {
    const { message, own, state } = item;
    const c = chat();
    const sender = store.nameOf(message.senderId);
    const showSender = !own && c.kind === "group";
    const bubble = h(
      "div",
      { class: "bubble" },
      showSender ? h("p", { class: "sender", "aria-hidden": "true" }, sender) : null,
      message.replyTo && !message.deleted ? quoteButton(c, message.replyTo) : null,
      h("span", { class: "visually-hidden" }, own ? "You: " : `${sender}: `),
      message.deleted
        ? h("p", { class: "body deleted" }, "Message deleted")
        : h("p", { class: "body" }, bodyNodes(message.body)),
      h(
        "p",
        { class: "meta" },
        message.editedAt && !message.deleted ? h("span", { class: "edited" }, "edited") : null,
        h("time", { datetime: new Date(message.createdAt).toISOString(), title: fullTimeLabel(message.createdAt) }, timeLabel(message.createdAt)),
        own && !message.deleted ? stateMark(state, item.readers, c.kind === "group") : null,
      ),
      reactionsRow({ message, me: store.me.id, nameOf: (id) => store.nameOf(id), toggle: (emoji, on) => actions.react(chatId, message, emoji, on) }),
    );
    const li = h(
      "li",
      {
        class: `msg ${own ? "own" : "theirs"}${message.deleted ? " is-deleted" : ""}`,
        dataset: { seq: String(message.seq), state: state ?? "", messageId: message.id ?? "" },
      },
      !own && c.kind === "group" ? avatar(sender, message.senderId, "small") : null,
      bubble,
    );
    if (!message.deleted && message.id) li.append(messageActions(message, li, own));
    return li;
  }

  // Every message's actions: Reply and React; one's own also Edit and Delete.
  function messageActions(message, li, own) {
    const box = h("div", { class: "msg-actions" });
    const toggle = (emoji, on) => actions.react(chatId, message, emoji, on);
    const react = reactButton({ box, message, me: store.me.id, toggle, restore: () => box.replaceChildren(...buttons) });
    const answer = h("button", { type: "button", class: "link", "aria-label": "Reply to message", onclick: () => startReply(message) }, "Reply");
    const buttons = [answer, react];
    box.append(answer, react);
    if (!own) return box;
    const edit = h("button", { type: "button", class: "link", "aria-label": "Edit message" }, "Edit");
    const remove = h("button", { type: "button", class: "link", "aria-label": "Delete message" }, "Delete");
    buttons.push(edit, remove);
    box.append(edit, remove);
    edit.addEventListener("click", () => startEdit(message, li));
    remove.addEventListener("click", () => {
      const confirm = h("button", { type: "button", class: "link danger" }, "Delete for everyone");
      const cancel = h("button", { type: "button", class: "link" }, "Keep");
      cancel.addEventListener("click", () => {
        box.replaceChildren(...buttons);
        remove.focus();
      });
      confirm.addEventListener("click", () => actions.remove(chatId, message));
      box.replaceChildren(confirm, cancel);
      cancel.focus();
    });
    return box;
  }

  // A quote in words: who wrote the message a reply answers, and how it starts (or that it is gone).
  function quoteWords(c, raw) {
    const quote = store.quoteOf(c, raw);
    const text = quote.deleted ? "deleted message" : quote.preview.replace(/\s+/g, " ").trim();
    const start = [...text].length > QUOTE_CHARACTERS ? `${[...text].slice(0, QUOTE_CHARACTERS).join("")}…` : text;
    return [store.nameOf(quote.senderId), start];
  }

  // Above a reply: the message it answers; a click shows that message, loading older history for it.
  function quoteButton(c, quote) {
    const [name, start] = quoteWords(c, quote);
    return h(
      "button",
      { type: "button", class: "quote", "aria-label": `In reply to ${name}: ${start}. Show that message`, onclick: () => showMessage(quote.seq) },
      h("span", { class: "quote-sender", "aria-hidden": "true" }, name),
      h("span", { class: "quote-text", "aria-hidden": "true" }, start),
    );
  }

  async function showMessage(seq) {
    const id = chatId;
    const found = await actions.loadUntil(id, seq);
    if (chatId !== id) return;
    render(); // now, not on the next task: the message must be in the list to scroll to it
    const target = found ? list.querySelector(`li[data-seq="${seq}"]`) : null;
    if (!target) {
      historyStatus.textContent = "That message could not be loaded.";
      return;
    }
    target.scrollIntoView({ block: "center" });
    target.classList.add("flash");
    target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: true });
    setTimeout(() => target.classList.remove("flash"), FLASH_MS);
  }

  function startReply(message) {
    replyingTo = store.quoteFor(message);
    const [name, start] = quoteWords(chat(), replyingTo);
    replyText.replaceChildren(h("span", { class: "quote-sender" }, `Replying to ${name}`), h("span", { class: "quote-text" }, start));
    replyBar.hidden = false;
    composer.focus();
  }

  function stopReply(focus = false) {
    replyingTo = null;
    replyBar.hidden = true;
    replyText.replaceChildren();
    if (focus) composer.focus();
  }

  function startEdit(message, li) {
    const field = h("textarea", { class: "edit-box", "aria-label": "Edit message", rows: "2" });
    field.value = message.body;
    const error = h("p", { class: "field-error", role: "alert" });
    const done = () => {
      nodes.delete(`m:${message.seq}`);
      render();
      scroller.querySelector(`li[data-seq="${message.seq}"] .msg-actions button[aria-label="Edit message"]`)?.focus();
    };
    const save = () => {
      const body = field.value;
      if (!body.trim() || codePoints(body) > BODY_MAX) {
        error.textContent = `A message is 1 to ${BODY_MAX.toLocaleString()} characters.`;
        return;
      }
      if (body !== message.body && !actions.edit(chatId, message, body)) {
        error.textContent = "You are offline: try again when the connection is back.";
        return;
      }
      done();
    };
    field.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        save();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        done();
      }
    });
    const editor = h(
      "div",
      { class: "editor" },
      field,
      error,
      h(
        "div",
        { class: "msg-actions visible" },
        h("button", { type: "button", class: "link", onclick: save }, "Save"),
        h("button", { type: "button", class: "link", onclick: done }, "Cancel"),
      ),
    );
    li.dataset.editing = "true";
    li.replaceChildren(editor);
    field.focus();
  }

  function renderPending(item) {
    const { entry } = item;
    const li = h(
      "li",
      { class: "msg own pending", dataset: { clientId: entry.clientId, state: entry.state } },
      h(
        "div",
        { class: "bubble" },
        entry.replyTo ? quoteButton(chat(), entry.replyTo) : null,
        h("span", { class: "visually-hidden" }, "You: "),
        h("p", { class: "body" }, bodyNodes(entry.body)),
        h(
          "p",
          { class: "meta" },
          h("time", { datetime: entry.createdAt }, timeLabel(entry.createdAt)),
          stateMark(entry.state, 0, false),
        ),
        entry.state === "failed"
          ? h(
              "p",
              { class: "failure" },
              h("span", {}, entry.reason || "The server refused this message."),
              " ",
              h("button", { type: "button", class: "link", onclick: () => actions.retry(entry) }, "Retry"),
              h("button", { type: "button", class: "link", onclick: () => actions.discard(entry) }, "Discard"),
            )
          : null,
      ),
    );
    return li;
  }

  // The keyboard's place survives a message drawn again: the same control (a reaction, "React"), else the
  // message's first button.
  function refocus(fresh, focused) {
    const key = focused?.dataset?.focusKey;
    queueMicrotask(() => {
      const same = key ? [...fresh.querySelectorAll("button")].find((b) => b.dataset.focusKey === key) : null;
      (same ?? fresh.querySelector("button"))?.focus();
    });
  }

  function render() {
    const c = chat();
    if (!c) return;
    renderHeader(c);

    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    const firstBefore = list.firstElementChild;
    // The oldest message, not the first row: a day separator stays first when its day grows older messages.
    const oldestBefore = list.querySelector("li[data-seq]");
    const heightBefore = scroller.scrollHeight;
    const topBefore = scroller.scrollTop;

    const next = new Map();
    const ordered = [];
    for (const item of items(c)) {
      let node = nodes.get(item.key);
      if (node?.dataset.editing === "true") {
        // keep an open editor as it is
      } else if (!node || node._sig !== item.sig) {
        const fresh = item.kind === "day" ? renderDay(item) : item.kind === "pending" ? renderPending(item) : renderMessage(item);
        fresh._sig = item.sig;
        if (node?.contains(document.activeElement)) refocus(fresh, document.activeElement);
        node = fresh;
      }
      next.set(item.key, node);
      ordered.push(node);
    }
    nodes = next;
    reconcile(list, ordered);

    historyStatus.textContent = c.loadingOlder
      ? "Loading earlier messages…"
      : c.hasOlder
        ? ""
        : c.messages.size
          ? "This is the beginning of the chat."
          : "No messages yet. Say hello!";

    // Older messages came in above: keep the reader where they were, or the top stays in reach and the next
    // page would load at once (one scroll, two pages).
    const oldestAfter = list.querySelector("li[data-seq]");
    const prepended = oldestBefore && oldestAfter !== oldestBefore && oldestBefore.isConnected;
    if (prepended && !atBottom) scroller.scrollTop = topBefore + (scroller.scrollHeight - heightBefore);
    else if (atBottom || !firstBefore) scroller.scrollTop = scroller.scrollHeight;
    renderTyping();
    maybeLoadOlder();
    maybeMarkRead();
  }

  // The title, and under it a group's size or the other person's handle and presence ("online", "away",
  // "last seen 5 min ago"), in words: the dot on the avatar only repeats it.
  function renderHeader(c) {
    const name = store.titleOf(c);
    title.textContent = name;
    composer.setAttribute("aria-label", `Message to ${name}`);
    if (c.kind === "group") {
      const n = c.memberIds.length;
      const label = `${n || "?"} member${n === 1 ? "" : "s"}`;
      membersButton.textContent = label;
      // the same button each time: re-rendering on presence must not take the keyboard's focus away
      if (subtitle.firstChild !== membersButton || subtitle.childNodes.length > 1) subtitle.replaceChildren(membersButton);
      headerAvatar.replaceChildren(avatarWithPresence(name, c.id, "group", null));
      return;
    }
    const peerId = store.peerOf(c);
    const peer = store.users.get(peerId);
    const presence = store.presenceOf(peerId);
    const now = Date.now();
    const status = presenceText(presence, now);
    subtitle.replaceChildren(
      peer ? `@${peer.username}` : "",
      peer && status ? " · " : "",
      status ? h("span", { class: "presence-text", dataset: { status: presence.status } }, status) : "",
    );
    headerAvatar.replaceChildren(avatarWithPresence(name, peerId ?? c.id, "", presence, now));
  }

  function renderTyping() {
    const c = chat();
    if (!c) return;
    const now = Date.now();
    const names = [...c.typing].filter(([, until]) => until > now).map(([userId]) => store.nameOf(userId));
    typing.textContent = typingText(names);
  }

  function maybeLoadOlder() {
    const c = chat();
    if (!c || c.loadingOlder || !c.hasOlder) return;
    const short = scroller.scrollHeight <= scroller.clientHeight + NEAR_TOP_PX;
    if (scroller.scrollTop < NEAR_TOP_PX || short) actions.loadOlder(c.id);
  }

  function maybeMarkRead() {
    const c = chat();
    if (!c || document.visibilityState !== "visible") return;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    if (atBottom && c.lastSeq > c.readSeq && c.messages.has(c.lastSeq)) actions.markRead(c.id, c.lastSeq);
  }

  // --- composer ---

  function updateCount() {
    const n = codePoints(composer.value);
    const over = n > BODY_MAX;
    count.textContent = `${n.toLocaleString()} / ${BODY_MAX.toLocaleString()}`;
    count.classList.toggle("over", over);
    count.classList.toggle("near", !over && n > BODY_MAX * 0.9);
    composer.setAttribute("aria-invalid", over ? "true" : "false");
    send.disabled = over || !composer.value.trim(); // nothing to send, as `submit` would refuse it
    const alert = over ? `Too long by ${(n - BODY_MAX).toLocaleString()} characters.` : "";
    if (countAlert.textContent !== alert) countAlert.textContent = alert;
    composer.style.height = "auto";
    composer.style.height = `${Math.min(composer.scrollHeight, 160)}px`;
  }

  const sendTyping = throttle(() => chatId && actions.typing(chatId), TYPING_EVERY_MS);

  function submit(event) {
    event.preventDefault();
    const body = composer.value;
    if (!body.trim() || codePoints(body) > BODY_MAX || !chatId) return;
    actions.send(chatId, body, replyingTo);
    stopReply();
    composer.value = "";
    updateCount();
    scroller.scrollTop = scroller.scrollHeight;
    composer.focus();
  }

  composer.addEventListener("keydown", (event) => {
    if (mentions.handleKey(event)) return;
    if (event.key === "Escape" && replyingTo) {
      event.preventDefault();
      stopReply();
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  composer.addEventListener("input", () => {
    updateCount();
    if (composer.value.trim()) sendTyping();
  });
  scroller.addEventListener("scroll", () => {
    maybeLoadOlder();
    maybeMarkRead();
  });
  document.addEventListener("visibilitychange", maybeMarkRead);

  const schedule = coalesce(render);
  const unsubscribe = [
    store.on("messages", (detail) => detail.chatId === chatId && schedule()),
    store.on("users", () => chatId && schedule()),
    store.on("chats", () => chatId && schedule()),
    store.on("presence", () => chat() && renderHeader(chat())),
    store.on("typing", (detail) => detail.chatId === chatId && renderTyping()),
    mute.dispose,
    () => document.removeEventListener("visibilitychange", maybeMarkRead),
  ];

  return {
    dispose() {
      chatId = null;
      for (const off of unsubscribe) off();
    },
    element,
    open(id) {
      if (chatId !== id) {
        chatId = id;
        nodes = new Map();
        list.replaceChildren();
        composer.value = "";
        mentions.close();
        stopReply();
      }
      pane.hidden = false;
      placeholder.hidden = true;
      mute.show(id);
      updateCount();
      render();
      scroller.scrollTop = scroller.scrollHeight;
      // on a phone, focusing the box would pop the keyboard over what you came to read
      if (matchMedia("(max-width: 720px)").matches) title.focus();
      else composer.focus();
    },
    close() {
      chatId = null;
      mute.show(null);
      pane.hidden = true;
      placeholder.hidden = false;
      placeholderText.textContent = PICK_A_CHAT;
      placeholder.setAttribute("aria-label", "No chat open");
      backToChats.hidden = true;
    },
    // In place of a chat that cannot be shown (a bookmark of a chat one is not in): why, and the way back.
    unavailable(reason) {
      this.close();
      placeholderText.textContent = reason;
      placeholder.setAttribute("aria-label", "Chat not available");
      backToChats.hidden = false;
    },
    get chatId() {
      return chatId;
    },
    render: schedule,
  };
}
