// The composition root of the page: builds the API client, the store, the connection and the views, and
// routes between the sign-in screen and the chat screen (`#/` the list, `#/chat/<id>` a conversation).

import { ActivityTracker, idleAfterFrom } from "./activity.js";
import { Api, ApiError } from "./api.js";
import { Connection, Status } from "./connection.js";
import { h, setPictureSource } from "./dom.js";
import { Store, messageFromRest, presenceFromWire } from "./store.js";
import { accountDialog } from "./views/account.js";
import { authView } from "./views/auth.js";
import { bannerView } from "./views/banner.js";
import { conversationView } from "./views/conversation.js";
import { newDirectDialog, newGroupDialog } from "./views/dialogs.js";
import { groupDialog } from "./views/group.js";
import { profileDialog } from "./views/profile.js";
import { notificationsDialog, registerServiceWorker } from "./views/notifications.js";
import { sidebarView } from "./views/sidebar.js";

const HISTORY_PAGE = 50;
const CATCH_UP_PAGE = 200;
const CATCH_UP_PAGES = 10;
const RESEND_AFTER_MS = 10_000; // an unacknowledged message on a live socket is sent again (idempotent)
const PRESENCE_TICK_MS = 30_000; // "last seen 5 min ago" is rendered again this often
const PRESENCE_ASK_MAX = 500; // ids per GET /api/presence
const PRESENCE_ASK_AFTER_MS = 2_000; // the service tells new contacts itself; REST is the fallback
const IDLE_AFTER_MS = idleAfterFrom(location.search); // read once: ?idle_after_ms= (docs/web-client.md)

const root = document.getElementById("app");
const api = new Api();
const store = new Store();
setPictureSource((userId) => store.users.get(userId)?.avatar_url ?? null);
let connection = null;
let chatScreen = null;
let resendTimer = null;
let presenceTimer = null;
let presenceAskTimer = null;
let activity = null;
const loadingChats = new Map(); // chat id → its load under way, which a second open waits for
const unopenableChats = new Map(); // chat id → { reason, lasting }: why it cannot be shown
const leftHere = new Set(); // chats this page left (Leave group), whose going needs no explaining
const loadingUsers = new Set();
const peerReadsLoaded = new Set();
const presenceAsked = new Set(); // ids asked over REST on this connection

// --- screens ---

function showAuth(notice = "") {
  stopSession();
  document.title = "Parlour — log in";
  root.replaceChildren(authView({ api, onSignedIn: enter, notice }));
}

async function enter() {
  const me = await api.me();
  store.setMe(me);
  store.setChats(await api.chats());
  chatScreen = buildChatScreen();
  root.replaceChildren(chatScreen.element);
  fetchMissingUsers();
  loadPresenceSetting();
  loadMutes();
  activity = new ActivityTracker({ idleAfterMs: IDLE_AFTER_MS, onChange: reportActivity });
  connection = new Connection({
    api,
    handlers: {
      resumeState: () => store.resumeState(),
      onFrame: (frame) => store.applyFrame(frame),
      onLive: () => {
        flushOutbox();
        // a session starts "active" on the server: say so only if this tab is not
        if (activity?.state !== "active") reportActivity(activity.state);
        // read receipts are not part of a resume: ask again for the open chat's cursors
        peerReadsLoaded.clear();
        if (store.openChatId) loadPeerReads(store.openChatId);
      },
      onStatus: (status, info) => {
        if (status !== Status.LIVE) requeueSending();
        // the socket is gone (SYNCING keeps what the new socket's snapshot just said)
        if (status !== Status.LIVE && status !== Status.SYNCING) forgetPresence();
        chatScreen?.banner.update(status, info);
        document.body.dataset.connection = status;
      },
    },
  });
  connection.start();
  activity.start();
  resendTimer = setInterval(resendStale, RESEND_AFTER_MS / 2);
  presenceTimer = setInterval(() => store.presence.size && store.emit("presence"), PRESENCE_TICK_MS);
  route();
}

function stopSession() {
  connection?.stop();
  connection = null;
  activity?.stop();
  activity = null;
  clearInterval(resendTimer);
  clearInterval(presenceTimer);
  clearTimeout(presenceAskTimer);
  presenceAskTimer = null;
  presenceAsked.clear();
  chatScreen?.sidebar.dispose();
  chatScreen?.conversation.dispose();
  chatScreen?.members.dispose();
  chatScreen = null;
  loadingUsers.clear();
  peerReadsLoaded.clear();
  store.clear();
}

function buildChatScreen() {
  const banner = bannerView({ onRetry: () => connection?.retryNow(), onReload: () => location.reload() });
  const direct = newDirectDialog({ api, store, onChat: openCreated });
  const group = newGroupDialog({ api, store, onChat: openCreated });
  const notifications = notificationsDialog({ api });
  const profile = profileDialog({ api, store });
  const account = accountDialog({
    api,
    onDeleted: () => signedOut(store.me?.id, "Your account has been deleted."),
  });
  const members = groupDialog({
    api,
    store,
    onOpen: (chatId) => fetchMissingUsers(chatId),
    leave: leaveGroup,
  });
  const sidebar = sidebarView({
    store,
    onNewChat: () => direct.open(),
    onNewGroup: () => group.open(),
    onLogOut: logOut,
    onHidePresence: async (hidden) => store.setPresenceHidden((await api.setPresenceSettings(hidden)).hidden),
    onNotifications: () => notifications.open(),
    onProfile: () => profile.open(),
    onAccount: () => account.open(),
  });
  const conversation = conversationView({ store, actions });
  // not a plain #composer link: the hash is the route
  const skip = h("a", { href: "#composer", class: "skip-link", onclick: skipToComposer }, "Skip to the message box");
  const element = h(
    "div",
    { class: "shell", dataset: { view: "list" } },
    skip,
    banner.element,
    h("div", { class: "panes" }, sidebar.element, conversation.element),
    direct.dialog,
    group.dialog,
    notifications.dialog,
    members.dialog,
    profile.dialog,
    account.dialog,
  );
  return { element, banner, sidebar, conversation, members };
}

function skipToComposer(event) {
  event.preventDefault();
  const composer = document.getElementById("composer");
  if (composer?.offsetParent) composer.focus();
  else document.querySelector(".chat-list a, .sidebar-actions button")?.focus();
}

function openCreated(chat) {
  store.upsertChat(chat);
  fetchMissingUsers();
  location.hash = `#/chat/${encodeURIComponent(chat.id)}`;
}

async function logOut() {
  const userId = store.me?.id;
  stopSession();
  await api.logOut();
  signedOut(userId);
}

// After a logout or an account deletion: this person's traces leave the tab, and the log-in form shows.
function signedOut(userId, notice = "") {
  stopSession();
  try {
    sessionStorage.removeItem(`parlour.outbox.${userId}`);
  } catch {
    // storage disabled
  }
  store.clear();
  unopenableChats.clear();
  leftHere.clear();
  location.hash = "#/";
  showAuth(notice);
}

// --- routing ---

function route() {
  if (!chatScreen) return;
  const match = /^#\/chat\/(.+)$/.exec(location.hash);
  const chatId = match ? decodeURIComponent(match[1]) : null;
  const { conversation, element } = chatScreen;
  if (!chatId) {
    store.openChatId = null;
    conversation.close();
    element.dataset.view = "list";
    document.title = "Parlour";
    store.emit("chats");
    return;
  }
  store.openChatId = chatId;
  element.dataset.view = "chat";
  const chat = store.chats.get(chatId);
  if (!chat || chat.placeholder) {
    conversation.close(); // the chat shown before must not stay on screen under this chat's address
    const failed = unopenableChats.get(chatId);
    if (failed) {
      conversation.unavailable(failed.reason);
      document.title = "Chat not available — Parlour";
      if (!failed.lasting) unopenableChats.delete(chatId); // a network failure: the next open asks again
      return;
    }
    loadChat(chatId).then(() => store.openChatId === chatId && route());
    return;
  }
  chat.unread = 0;
  document.title = `${store.titleOf(chat)} — Parlour`;
  conversation.open(chatId);
  store.emit("chats");
  loadPeerReads(chatId);
}

window.addEventListener("hashchange", route);

// --- loading ---

function loadChat(chatId) {
  if (!loadingChats.has(chatId)) {
    loadingChats.set(chatId, fetchChat(chatId).finally(() => loadingChats.delete(chatId)));
  }
  return loadingChats.get(chatId);
}

async function fetchChat(chatId) {
  try {
    store.upsertChat(await api.chat(chatId));
    unopenableChats.delete(chatId);
    fetchMissingUsers();
  } catch (error) {
    // Remembered, so that opening it again shows why at once rather than asking again and again.
    if (error instanceof ApiError && error.status === 404) {
      store.removeChat(chatId);
      const reason = "This chat is not available: it does not exist, or you are not a member of it.";
      unopenableChats.set(chatId, { reason, lasting: true });
    } else {
      const reason = "This chat could not be loaded. Go back to your chats and open it again.";
      unopenableChats.set(chatId, { reason, lasting: false });
    }
  }
}

// A chat's full description carries every member's read cursor: what "read" marks need.
function loadPeerReads(chatId) {
  if (peerReadsLoaded.has(chatId)) return;
  peerReadsLoaded.add(chatId);
  api.chat(chatId).then(
    (chat) => {
      store.upsertChat(chat);
      store.emit("messages", { chatId });
      fetchMissingUsers();
    },
    () => peerReadsLoaded.delete(chatId),
  );
}

// Names for every member, peer and sender we know of (in one chat, or in all of them).
function fetchMissingUsers(chatId = null) {
  const wanted = new Set();
  const chats = chatId ? [store.chats.get(chatId)].filter(Boolean) : store.chats.values();
  for (const chat of chats) {
    for (const id of chat.memberIds) wanted.add(id);
    const peer = store.peerOf(chat);
    if (peer) wanted.add(peer);
    for (const message of chat.messages.values()) {
      wanted.add(message.senderId);
      if (message.replyTo) wanted.add(message.replyTo.senderId); // a quote names who it quotes
    }
    if (chat.lastMessage) wanted.add(chat.lastMessage.senderId);
  }
  for (const id of wanted) {
    if (!id || store.users.has(id) || loadingUsers.has(id)) continue;
    loadingUsers.add(id);
    api.user(id).then(
      (user) => store.rememberUsers([user]),
      () => loadingUsers.delete(id),
    );
  }
}

// --- presence ---

function reportActivity(state) {
  connection?.send({ type: "activity", state }); // not live: onLive says it once the next socket is
}

function forgetPresence() {
  presenceAsked.clear();
  store.forgetPresence();
}

// The snapshot after `hello` covers everyone I shared a chat with then, and the service sends a frame
// when a chat makes someone new a contact. A direct chat's peer still unknown a little later (a frame
// lost, a service that does not push) is asked for over REST, once per connection. Nothing is asked
// before the service has spoken on this connection.
function scheduleMissingPresence() {
  if (presenceAskTimer || !store.presenceHeard) return;
  presenceAskTimer = setTimeout(() => {
    presenceAskTimer = null;
    fetchMissingPresence();
  }, PRESENCE_ASK_AFTER_MS);
}

function fetchMissingPresence() {
  if (!store.presenceHeard) return;
  const wanted = [];
  for (const chat of store.chats.values()) {
    const peer = chat.kind === "direct" && !chat.placeholder ? store.peerOf(chat) : null;
    if (peer && !store.presence.has(peer) && !presenceAsked.has(peer)) wanted.push(peer);
  }
  for (let start = 0; start < wanted.length; start += PRESENCE_ASK_MAX) {
    const ids = wanted.slice(start, start + PRESENCE_ASK_MAX);
    for (const id of ids) presenceAsked.add(id);
    api.presence(ids).then(
      ({ users }) => {
        if (!store.presenceHeard) return; // the connection went meanwhile: the next snapshot says it
        // a frame that came meanwhile is newer than this answer
        store.setPresence(users.map(presenceFromWire).filter((p) => !store.presence.has(p.userId)));
      },
      () => {}, // not a contact (yet), or the service is away: the next frame says it
    );
  }
}

function loadPresenceSetting() {
  api.presenceSettings().then(
    (settings) => store.setPresenceHidden(settings.hidden),
    () => store.setPresenceHidden(null), // no presence service: the setting is not shown
  );
}

// --- notifications ---

function loadMutes() {
  api.mutes().then(
    (ids) => store.setMutes(ids),
    () => store.setMutes(null), // no notifications service: no mute button, no settings
  );
}

// A click on a notification while this tab is open: the service worker says which chat to show.
function onWorkerMessage(event) {
  const data = event.data;
  if (data?.type !== "open-chat" || typeof data.url !== "string") return;
  const target = new URL(data.url, location.href);
  if (target.origin === location.origin && target.hash.startsWith("#/")) location.hash = target.hash;
}

store.on("unknown-chat", ({ chatId }) => loadChat(chatId));
store.on("messages", ({ chatId }) => fetchMissingUsers(chatId));
// The total unread in the tab's title, so a background tab says when someone wrote: in the other chats,
// and in the open one while the tab is hidden (nobody is reading it then).
function showUnreadInTitle() {
  let unread = 0;
  for (const chat of store.chats.values()) {
    if (chat.id !== store.openChatId) unread += chat.unread;
    else if (document.visibilityState === "hidden") unread += store.unreadFromOthers(chat);
  }
  const base = document.title.replace(/^\(\d+\) /, "");
  document.title = unread ? `(${unread}) ${base}` : base;
}
store.on("chats", showUnreadInTitle);
document.addEventListener("visibilitychange", showUnreadInTitle);
store.on("typing", () => fetchMissingUsers());
store.on("chats", scheduleMissingPresence);
store.on("presence", scheduleMissingPresence);
store.on("gap", ({ chatId }) => catchUp(chatId));
store.on("retry-outbox", ({ after }) => setTimeout(flushOutbox, after));
// Leave a group from this page. Marked before asking: the `chat.removed` frame may come before the answer.
async function leaveGroup(chatId) {
  leftHere.add(chatId);
  try {
    await api.removeMember(chatId, store.me.id);
  } catch (error) {
    leftHere.delete(chatId);
    throw error;
  }
  store.removeChat(chatId);
}

// A chat that went: left from this page, it just closes; otherwise (removed by someone, or left on
// another device) the page says so, in place of the chat if it was open.
store.on("chat-removed", ({ chatId, title, known }) => {
  const mine = leftHere.delete(chatId);
  if (mine || !known) {
    if (store.openChatId === chatId) location.hash = "#/";
    return;
  }
  const reason = `You are no longer a member of “${title}”.`;
  if (store.openChatId === chatId) {
    unopenableChats.set(chatId, { reason, lasting: true });
    route();
  } else chatScreen?.sidebar.notice(reason);
});

// Read what was missed in a chat (a seq gap, or a truncated resume) forward from the last contiguous seq;
// past CATCH_UP_PAGES pages, start the chat again from its newest page instead.
const catchingUp = new Set();
async function catchUp(chatId) {
  if (catchingUp.has(chatId)) return;
  catchingUp.add(chatId);
  try {
    for (let page = 0; page < CATCH_UP_PAGES; page += 1) {
      const chat = store.chats.get(chatId);
      if (!chat) return;
      const { items, hasMore } = await api.messages(chatId, { afterSeq: chat.syncedSeq, limit: CATCH_UP_PAGE });
      store.addMessages(chatId, items.map(messageFromRest), { live: true });
      if (!hasMore) return;
    }
    store.resetHistory(chatId, (await api.chat(chatId)).last_seq);
    store.setChats(await api.chats()); // the server's unread counts
  } catch {
    // the next gap or resume asks again
  } finally {
    catchingUp.delete(chatId);
  }
}

// One page of older history above what is loaded (at most one at a time per chat: `actions.loadOlder`).
async function loadOlder(chatId) {
  const chat = store.chats.get(chatId);
  if (!chat || chat.loadingOlder || !chat.hasOlder) return;
  const beforeSeq = store.oldestSeq(chat);
  if (beforeSeq <= 1) {
    chat.hasOlder = false;
    store.emit("messages", { chatId });
    return;
  }
  chat.loadingOlder = true;
  store.emit("messages", { chatId });
  try {
    const page = await api.messages(chatId, { beforeSeq, limit: HISTORY_PAGE });
    chat.loadingOlder = false;
    store.addOlder(chatId, page.items.map(messageFromRest), page.hasMore);
  } catch {
    chat.loadingOlder = false;
    setTimeout(() => store.emit("messages", { chatId }), 3_000); // try again a little later
  }
}

// --- what the views ask for ---

const olderLoads = new Map(); // chat id → its older page under way

const actions = {
  send(chatId, body, replyTo = null) {
    store.enqueue(chatId, body, replyTo);
    flushOutbox();
  },
  typing(chatId) {
    connection?.send({ type: "typing", chat_id: chatId });
  },
  edit(chatId, message, body) {
    return Boolean(connection?.send({ type: "message.edit", chat_id: chatId, message_id: message.id, body }));
  },
  remove(chatId, message) {
    return Boolean(connection?.send({ type: "message.delete", chat_id: chatId, message_id: message.id }));
  },
  // Put my `emoji` on the message (`on`) or take it off; the `message.reacted` frame shows it.
  react(chatId, message, emoji, on) {
    const frame = { type: "message.react", chat_id: chatId, message_id: message.id, emoji, remove: !on };
    return Boolean(connection?.send(frame));
  },
  retry(entry) {
    store.setOutboxState(entry, "queued");
    flushOutbox();
  },
  discard(entry) {
    store.discard(entry.clientId);
  },
  // One page of older history (a load under way is the one asked for).
  loadOlder(chatId) {
    if (!olderLoads.has(chatId)) olderLoads.set(chatId, loadOlder(chatId).finally(() => olderLoads.delete(chatId)));
    return olderLoads.get(chatId);
  },
  // Page older history in until the message at `seq` is there (a reply's quote was clicked); whether it is.
  async loadUntil(chatId, seq) {
    for (;;) {
      const chat = store.chats.get(chatId);
      if (!chat) return false;
      if (chat.messages.has(seq)) return true;
      const oldest = store.oldestSeq(chat);
      if (!chat.hasOlder || oldest <= seq) return false;
      await this.loadOlder(chatId);
      if (store.oldestSeq(chat) >= oldest) return false; // no progress (offline): the next click tries again
    }
  },
  async setMuted(chatId, muted) {
    const answer = await api.setMute(chatId, muted);
    store.setMuted(chatId, answer.muted);
  },
  openMembers(chatId) {
    chatScreen?.members.open(chatId);
  },
  markRead(chatId, seq) {
    store.markReadLocally(chatId, seq);
    if (!connection?.send({ type: "read", chat_id: chatId, seq })) api.markRead(chatId, seq).catch(() => {});
  },
};

// Send every waiting message, oldest first, with its client_id: a repeat returns the original message.
function flushOutbox() {
  if (!connection?.live) return;
  const now = Date.now();
  for (const entry of store.outbox) {
    if (entry.state !== "queued" || (entry.retryAt && entry.retryAt > now)) continue;
    const frame = { type: "message.send", chat_id: entry.chatId, client_id: entry.clientId, body: entry.body };
    if (entry.replyTo) frame.reply_to = entry.replyTo.messageId;
    if (!connection.send(frame)) return;
    store.setOutboxState(entry, "sending");
  }
}

function resendStale() {
  if (!connection?.live) return;
  const stale = Date.now() - RESEND_AFTER_MS;
  for (const entry of store.outbox) {
    if (entry.state === "sending" && entry.sentAt < stale) entry.state = "queued";
  }
  flushOutbox();
}

// A socket that closes leaves messages "sending": they go again, with the same client_id, once live.
function requeueSending() {
  for (const entry of store.outbox) if (entry.state === "sending") store.setOutboxState(entry, "queued");
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && connection?.status === Status.WAITING) connection.retryNow();
});

// --- start ---

api.onSessionEnded = () => showAuth("Your session has ended. Please log in again.");
api.onUserChanged = () => location.reload();

async function boot() {
  registerServiceWorker();
  navigator.serviceWorker?.addEventListener("message", onWorkerMessage);
  navigator.serviceWorker?.startMessages();
  try {
    if (api.canRestore && (await api.restore())) {
      await enter();
      return;
    }
    showAuth();
  } catch (error) {
    showAuth(error instanceof ApiError && error.isNetwork ? "Cannot reach the server. Try again in a moment." : "");
  }
}

boot();
