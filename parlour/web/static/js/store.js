// The client's state: chats, their messages (keyed by seq, so nothing is ever shown twice), read cursors,
// typing, and the outbox of messages not yet acknowledged. Views listen to its events:
//   "chats" (the list changed), "messages" {chatId}, "typing" {chatId}, "users", "outbox",
//   "unknown-chat" {chatId} (a frame named a chat we have not loaded), "gap" {chatId, afterSeq},
//   "presence" (someone's status changed, or time passed for "last seen"), "presence-settings".

import { newClientId, toDate } from "./format.js";

const TYPING_SHOWN_MS = 6_000;
const GAP_WAIT_MS = 1_500;

function time(value) {
  return value ? toDate(value).getTime() : 0;
}

// Each reader below takes the one shape its source has: REST bodies as the OpenAPI schema at /docs gives
// them (parlour/messaging/adapters/schemas.py), WebSocket frames as docs/protocol.md lists them. A field
// that is not where the contract puts it is a bug to see, not a variant to guess.

// A message's reactions, as `MessageOut`, `message.new` and `message.reacted` all carry them.
function reactionsFromWire(list) {
  return list.map((reaction) => ({ emoji: reaction.emoji, userIds: reaction.user_ids }));
}

// What a reply carries of the message it answers (`reply_to` of `MessageOut` and `message.new`), or null.
function quoteFromWire(raw) {
  if (!raw) return null;
  return { messageId: raw.message_id, seq: raw.seq, senderId: raw.sender_id, preview: raw.preview, deleted: raw.deleted };
}

// A message of the REST API (`MessageOut`: history pages, POST .../messages).
export function messageFromRest(raw) {
  return {
    id: raw.id,
    chatId: raw.chat_id,
    seq: raw.seq,
    senderId: raw.sender_id,
    clientId: raw.client_id,
    body: raw.body,
    createdAt: raw.created_at,
    editedAt: raw.edited_at,
    deleted: raw.deleted,
    reactions: reactionsFromWire(raw.reactions),
    replyTo: quoteFromWire(raw.reply_to),
  };
}

// A `message.new` frame (which carries no client_id: the sender's ack does).
export function messageFromFrame(frame) {
  return {
    id: frame.message_id,
    chatId: frame.chat_id,
    seq: frame.seq,
    senderId: frame.sender_id,
    clientId: null,
    body: frame.body,
    createdAt: frame.created_at,
    editedAt: frame.edited_at,
    deleted: frame.deleted,
    reactions: reactionsFromWire(frame.reactions),
    replyTo: quoteFromWire(frame.reply_to),
  };
}

// The last message of a chat-list entry (`MessagePreview`: a preview instead of the body).
function messageFromPreview(raw, chatId) {
  return {
    id: raw.id,
    chatId,
    seq: raw.seq,
    senderId: raw.sender_id,
    clientId: null,
    body: raw.preview,
    createdAt: raw.created_at,
    editedAt: null,
    deleted: raw.deleted,
    reactions: [],
    replyTo: null,
  };
}

// A user's presence, as a `presence` frame's `users` and GET /api/presence's `users` both give it
// (docs/protocol.md): `status` "online" | "away" | "offline", `last_seen` an ISO time or null.
export function presenceFromWire(raw) {
  return { userId: raw.user_id, status: raw.status, lastSeen: raw.last_seen };
}

// What one source says about a chat; `undefined` where it says nothing.

// An entry of GET /api/chats (`ChatSummaryOut`): my read cursor and unread count, no members.
function chatFromSummary(raw) {
  return {
    id: raw.id,
    kind: raw.kind,
    title: raw.title,
    peerId: raw.peer_id,
    lastSeq: raw.last_seq,
    readSeq: raw.read_seq,
    unread: raw.unread_count,
    lastMessage: raw.last_message ? messageFromPreview(raw.last_message, raw.id) : undefined,
    activityAt: time(raw.last_activity_at),
  };
}

// A chat of GET/POST/PATCH /api/chats/... (`ChatOut`): the members with their read cursors.
function chatFromRest(raw) {
  return {
    id: raw.id,
    kind: raw.kind,
    title: raw.title,
    members: raw.members,
    lastSeq: raw.last_seq,
    activityAt: Math.max(time(raw.last_activity_at), time(raw.created_at)),
  };
}

// A `chat` frame: the chat_id, and members as {user_id, role, read_seq}.
function chatFromFrame(frame) {
  return {
    id: frame.chat_id,
    kind: frame.kind,
    title: frame.title,
    members: frame.members,
    lastSeq: frame.last_seq,
    activityAt: time(frame.created_at),
  };
}

export class Store extends EventTarget {
  constructor({ storage = globalThis.sessionStorage } = {}) {
    super();
    this.storage = storage;
    this.me = null;
    this.users = new Map();
    this.chats = new Map();
    this.outbox = [];
    this.openChatId = null;
    this.gapTimers = new Map();
    this.presence = new Map(); // user id → {userId, status, lastSeen}, as the live connection last said
    this.presenceHeard = false; // a `presence` frame came on this connection (the service is there)
    this.presenceHidden = null; // my own setting: true, false, or null while unknown
    this.mutedChats = null; // ids of the chats I muted, or null while unknown (no notifications service)
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  on(type, fn) {
    const listener = (event) => fn(event.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  // --- people ---

  setMe(user) {
    this.me = user;
    this.users.set(user.id, user);
    this.#loadOutbox();
  }

  // My own user as auth answers it after a change (my name, my picture).
  updateMe(user) {
    this.me = user;
    this.rememberUsers([user]);
  }

  rememberUsers(users) {
    for (const user of users) this.users.set(user.id, user);
    this.emit("users");
  }

  nameOf(userId) {
    const user = this.users.get(userId);
    return user ? user.display_name || user.username : "…";
  }

  // --- presence ---

  // Entries read with presenceFromWire; returns nothing, emits "presence" once.
  setPresence(entries) {
    for (const entry of entries) this.presence.set(entry.userId, entry);
    this.emit("presence");
  }

  presenceOf(userId) {
    return (userId && this.presence.get(userId)) || null;
  }

  // The connection is gone: what it said may no longer hold, and the next one sends a fresh snapshot.
  forgetPresence() {
    this.presenceHeard = false;
    if (!this.presence.size) return;
    this.presence.clear();
    this.emit("presence");
  }

  setPresenceHidden(hidden) {
    this.presenceHidden = hidden;
    this.emit("presence-settings");
  }

  // --- notifications ---

  // `ids` the chats muted, or null when the notifications service is not there.
  setMutes(ids) {
    this.mutedChats = ids === null ? null : new Set(ids);
    this.emit("mutes");
    this.emit("chats");
  }

  setMuted(chatId, muted) {
    if (!this.mutedChats) this.mutedChats = new Set();
    if (muted) this.mutedChats.add(chatId);
    else this.mutedChats.delete(chatId);
    this.emit("mutes");
    this.emit("chats");
  }

  isMuted(chatId) {
    return Boolean(this.mutedChats?.has(chatId));
  }

  // --- chats ---

  #blankChat(id) {
    return {
      id,
      kind: "direct",
      title: null,
      memberIds: [],
      roles: new Map(), // user id → owner, admin or member (known once the chat's members are)
      lastSeq: 0,
      readSeq: 0,
      unread: 0,
      lastMessage: null,
      activityAt: 0,
      syncedSeq: 0, // everything up to here is known (resume asks from here)
      messages: new Map(),
      hasOlder: true,
      loadingOlder: false,
      peerReads: new Map(),
      typing: new Map(),
      placeholder: true,
    };
  }

  // A chat as GET /api/chats/{id} or a create, rename or membership change answers it (`ChatOut`).
  upsertChat(raw) {
    return this.#mergeChat(chatFromRest(raw));
  }

  // The entries of GET /api/chats (`ChatSummaryOut`).
  setChats(list) {
    for (const raw of list) this.#mergeChat(chatFromSummary(raw));
  }

  #mergeChat(update) {
    const { id } = update;
    const chat = this.chats.get(id) ?? this.#blankChat(id);
    chat.placeholder = false;
    chat.kind = update.kind;
    chat.title = update.title;
    if (update.peerId !== undefined) chat.peerId = update.peerId;
    if (update.members) {
      chat.memberIds = update.members.map((member) => member.user_id);
      chat.roles = new Map(update.members.map((member) => [member.user_id, member.role]));
      for (const member of update.members) {
        if (member.user_id === this.me?.id) continue;
        chat.peerReads.set(member.user_id, Math.max(chat.peerReads.get(member.user_id) ?? 0, member.read_seq));
      }
    }
    if (update.lastSeq > chat.lastSeq) chat.lastSeq = update.lastSeq;
    if (chat.syncedSeq === 0 && chat.messages.size === 0) chat.syncedSeq = chat.lastSeq;
    if (update.readSeq !== undefined) chat.readSeq = Math.max(chat.readSeq, update.readSeq);
    if (update.unread !== undefined) chat.unread = this.openChatId === id ? 0 : update.unread;
    const last = update.lastMessage;
    if (last && (!chat.lastMessage || last.seq >= chat.lastMessage.seq)) chat.lastMessage = last;
    chat.activityAt = Math.max(chat.activityAt, update.activityAt, time(last?.createdAt));
    this.chats.set(id, chat);
    this.emit("chats");
    return chat;
  }

  // A chat I am no longer in; the event says what it was called, for telling me so.
  removeChat(id) {
    const chat = this.chats.get(id);
    if (!chat) return;
    this.chats.delete(id);
    this.emit("chats");
    this.emit("chat-removed", { chatId: id, title: this.titleOf(chat), known: !chat.placeholder });
  }

  sortedChats() {
    return [...this.chats.values()]
      .filter((chat) => !chat.placeholder)
      .sort((a, b) => b.activityAt - a.activityAt || (a.id < b.id ? -1 : 1));
  }

  #chatFor(chatId) {
    let chat = this.chats.get(chatId);
    if (!chat) {
      chat = this.#blankChat(chatId);
      this.chats.set(chatId, chat);
      this.emit("unknown-chat", { chatId });
    }
    return chat;
  }

  peerOf(chat) {
    return chat.peerId ?? chat.memberIds.find((id) => id !== this.me?.id) ?? null;
  }

  titleOf(chat) {
    if (chat.kind === "group") return chat.title || "Group";
    const peer = this.peerOf(chat);
    return peer ? this.nameOf(peer) : chat.title || "Direct chat";
  }

  // The resume request: per chat, the last seq up to which this client has everything.
  resumeState() {
    const state = {};
    for (const chat of this.chats.values()) if (!chat.placeholder) state[chat.id] = chat.syncedSeq;
    return state;
  }

  // --- messages ---

  // Add messages (read with messageFromRest or messageFromFrame: from history, resume or live); returns how
  // many were new. Duplicates are ignored by seq.
  addMessages(chatId, messages, { live = false } = {}) {
    const chat = this.#chatFor(chatId);
    let added = 0;
    for (const message of messages) {
      const known = chat.messages.get(message.seq);
      if (chat.placeholder && chat.messages.size === 0 && chat.syncedSeq < message.seq - 1) {
        chat.syncedSeq = message.seq - 1; // a chat new to us: what came before is history, not a gap
      }
      if (known) {
        const { body, editedAt, deleted, reactions, replyTo } = message;
        Object.assign(known, { body, editedAt, deleted, reactions, replyTo });
        continue;
      }
      chat.messages.set(message.seq, message);
      added += 1;
      this.#settleOutbox(message);
      if (message.seq > chat.lastSeq) chat.lastSeq = message.seq;
      if (!chat.lastMessage || message.seq >= chat.lastMessage.seq) chat.lastMessage = message;
      chat.activityAt = Math.max(chat.activityAt, time(message.createdAt));
      const fromOther = message.senderId !== this.me?.id;
      if (chat.typing.delete(message.senderId)) this.emit("typing", { chatId }); // they sent what they typed
      if (live && fromOther && message.seq > chat.readSeq && this.openChatId !== chatId) chat.unread += 1;
      if (!fromOther && message.seq > chat.readSeq) chat.readSeq = message.seq; // my own messages are read
    }
    this.#advanceSynced(chat);
    if (added) {
      this.emit("messages", { chatId });
      this.emit("chats");
    }
    return added;
  }

  #advanceSynced(chat) {
    while (chat.messages.has(chat.syncedSeq + 1)) chat.syncedSeq += 1;
    const missing = chat.lastSeq > chat.syncedSeq && chat.messages.size > 0;
    const hasNewer = [...chat.messages.keys()].some((seq) => seq > chat.syncedSeq + 1);
    if (missing && hasNewer && !this.gapTimers.has(chat.id)) {
      // a later seq came first: wait briefly for the missing ones, then ask for them
      this.gapTimers.set(
        chat.id,
        setTimeout(() => {
          this.gapTimers.delete(chat.id);
          if (chat.lastSeq > chat.syncedSeq) this.emit("gap", { chatId: chat.id, afterSeq: chat.syncedSeq });
        }, GAP_WAIT_MS),
      );
    }
  }

  // History paged in from above (older messages): does not count as unread, may end the history.
  addOlder(chatId, messages, hasMore) {
    const chat = this.#chatFor(chatId);
    if (!hasMore) chat.hasOlder = false;
    const oldest = Math.min(...chat.messages.keys(), ...messages.map((m) => m.seq));
    if (oldest <= 1) chat.hasOlder = false;
    this.addMessages(chatId, messages);
    if (!messages.length) this.emit("messages", { chatId });
  }

  // A reply's quote as it should read now: from the quoted message itself when it is loaded (an edit or
  // a deletion since shows), else as the reply carried it.
  quoteOf(chat, quote) {
    const quoted = chat.messages.get(quote.seq);
    if (!quoted || quoted.id !== quote.messageId) return quote;
    return { ...quote, senderId: quoted.senderId, preview: quoted.deleted ? "" : quoted.body, deleted: quoted.deleted };
  }

  // The quote a reply to `message` carries.
  quoteFor(message) {
    return { messageId: message.id, seq: message.seq, senderId: message.senderId, preview: message.body, deleted: message.deleted };
  }

  oldestSeq(chat) {
    return chat.messages.size ? Math.min(...chat.messages.keys()) : chat.lastSeq + 1;
  }

  sortedMessages(chat) {
    return [...chat.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  // Too far behind to page through what was missed: forget the loaded history and start again from the
  // newest page (`lastSeq` is the server's).
  resetHistory(chatId, lastSeq) {
    const chat = this.#chatFor(chatId);
    chat.messages.clear();
    chat.hasOlder = true;
    chat.lastSeq = Math.max(chat.lastSeq, lastSeq);
    chat.syncedSeq = chat.lastSeq;
    this.emit("messages", { chatId, reset: true });
  }

  // How many other members have read up to `seq` (a direct chat: 0 or 1).
  readersOf(chat, seq) {
    let readers = 0;
    for (const [userId, readSeq] of chat.peerReads) if (userId !== this.me?.id && readSeq >= seq) readers += 1;
    return readers;
  }

  // How many messages of others in `chat` are past my read cursor (the open chat's, in a hidden tab).
  unreadFromOthers(chat) {
    let unread = 0;
    for (const message of chat.messages.values()) {
      if (message.seq > chat.readSeq && message.senderId !== this.me?.id) unread += 1;
    }
    return unread;
  }

  markReadLocally(chatId, seq) {
    const chat = this.chats.get(chatId);
    if (!chat) return;
    chat.readSeq = Math.max(chat.readSeq, seq);
    chat.unread = 0;
    this.emit("chats");
  }

  // --- server frames ---

  applyFrame(frame) {
    const handler = this.#handlers[frame.type];
    if (handler) handler.call(this, frame);
  }

  #handlers = {
    "message.new"(frame) {
      this.addMessages(frame.chat_id, [messageFromFrame(frame)], { live: true });
    },
    "message.ack"(frame) {
      const entry = this.outbox.find((e) => e.clientId === frame.client_id);
      const chatId = frame.chat_id;
      if (!entry || this.chats.get(chatId)?.messages.has(frame.seq)) {
        this.#dropFromOutbox(frame.client_id); // message.new came first: it carried the whole message
        return;
      }
      this.addMessages(chatId, [
        {
          id: frame.message_id,
          chatId,
          seq: frame.seq,
          senderId: this.me.id,
          clientId: frame.client_id,
          body: entry.body,
          createdAt: frame.created_at,
          editedAt: null,
          deleted: false,
          reactions: [],
          replyTo: entry.replyTo ?? null,
        },
      ]);
      this.#dropFromOutbox(frame.client_id);
    },
    "message.rejected"(frame) {
      const entry = this.outbox.find((e) => e.clientId === frame.client_id);
      if (!entry) return;
      entry.state = "failed";
      entry.reason = frame.reason || frame.code;
      this.#saveOutbox();
      this.emit("messages", { chatId: entry.chatId });
    },
    "message.edited"(frame) {
      this.#updateMessage(frame, (m) => {
        m.body = frame.body;
        m.editedAt = frame.edited_at;
      });
    },
    "message.deleted"(frame) {
      this.#updateMessage(frame, (m) => {
        m.body = "";
        m.deleted = true;
        m.reactions = [];
      });
    },
    "message.reacted"(frame) {
      this.#updateMessage(frame, (m) => {
        m.reactions = reactionsFromWire(frame.reactions);
      });
    },
    typing(frame) {
      if (frame.user_id === this.me?.id) return;
      const chat = this.chats.get(frame.chat_id);
      if (!chat) return;
      chat.typing.set(frame.user_id, Date.now() + TYPING_SHOWN_MS);
      this.emit("typing", { chatId: chat.id });
      setTimeout(() => this.emit("typing", { chatId: chat.id }), TYPING_SHOWN_MS + 50);
    },
    read(frame) {
      const chat = this.chats.get(frame.chat_id);
      if (!chat) return;
      if (frame.user_id === this.me?.id) {
        chat.readSeq = Math.max(chat.readSeq, frame.seq);
        if (chat.readSeq >= chat.lastSeq) chat.unread = 0;
        this.emit("chats");
      } else {
        chat.peerReads.set(frame.user_id, Math.max(chat.peerReads.get(frame.user_id) ?? 0, frame.seq));
        chat.typing.delete(frame.user_id);
      }
      this.emit("messages", { chatId: chat.id });
    },
    presence(frame) {
      this.presenceHeard = true;
      this.setPresence(frame.users.map(presenceFromWire));
    },
    chat(frame) {
      this.#mergeChat(chatFromFrame(frame));
    },
    "chat.removed"(frame) {
      this.removeChat(frame.chat_id);
    },
    "resume.done"(frame) {
      for (const chatId of frame.removed) this.removeChat(chatId);
      for (const [chatId, seq] of Object.entries(frame.chats)) {
        const chat = this.chats.get(chatId);
        if (chat && seq > chat.lastSeq) chat.lastSeq = seq;
      }
      // more was missed than one answer carries: the rest is paged in over REST from what was included
      for (const chatId of frame.truncated) {
        const chat = this.chats.get(chatId);
        if (chat) this.emit("gap", { chatId, afterSeq: chat.syncedSeq });
      }
    },
    error(frame) {
      // the gateway could not take a message.send: "unavailable" and "rate_limited" are worth sending again
      const entry = frame.client_id && this.outbox.find((e) => e.clientId === frame.client_id);
      if (!entry) return;
      const again = frame.code === "unavailable" || frame.code === "rate_limited";
      entry.state = again ? "queued" : "failed";
      entry.reason = again ? null : frame.reason || frame.code;
      entry.retryAt = again ? Date.now() + (frame.retry_after ?? 2) * 1000 : null;
      this.#saveOutbox();
      this.emit("messages", { chatId: entry.chatId });
      if (again) this.emit("retry-outbox", { after: (frame.retry_after ?? 2) * 1000 });
    },
  };

  #updateMessage(frame, change) {
    const chat = this.chats.get(frame.chat_id);
    if (!chat) return;
    const message =
      chat.messages.get(frame.seq) ?? [...chat.messages.values()].find((m) => m.id === frame.message_id);
    if (message) change(message);
    const last = chat.lastMessage;
    if (last && last !== message && (last.seq === frame.seq || last.id === frame.message_id)) change(last);
    this.emit("messages", { chatId: chat.id });
    this.emit("chats");
  }

  // --- outbox: messages typed but not yet acknowledged, kept across reconnects and reloads ---

  // `replyTo`: the quote of the message this one answers (as a message's `replyTo`), or null.
  enqueue(chatId, body, replyTo = null) {
    const entry = { clientId: newClientId(), chatId, body, replyTo, createdAt: new Date().toISOString(), state: "queued" };
    this.outbox.push(entry);
    this.#saveOutbox();
    this.emit("messages", { chatId });
    return entry;
  }

  outboxOf(chatId) {
    return this.outbox.filter((e) => e.chatId === chatId);
  }

  setOutboxState(entry, state) {
    entry.state = state;
    entry.sentAt = state === "sending" ? Date.now() : entry.sentAt;
    this.#saveOutbox();
    this.emit("messages", { chatId: entry.chatId });
  }

  discard(clientId) {
    this.#dropFromOutbox(clientId);
  }

  // A committed message of mine settles its outbox entry: by client_id, or by body when the frame has none.
  #settleOutbox(message) {
    if (message.senderId !== this.me?.id) return;
    const entry = message.clientId
      ? this.outbox.find((e) => e.clientId === message.clientId)
      : this.outbox.find((e) => e.chatId === message.chatId && e.state === "sending" && e.body === message.body);
    if (entry) this.#dropFromOutbox(entry.clientId);
  }

  #dropFromOutbox(clientId) {
    const index = this.outbox.findIndex((e) => e.clientId === clientId);
    if (index < 0) return;
    const [entry] = this.outbox.splice(index, 1);
    this.#saveOutbox();
    this.emit("messages", { chatId: entry.chatId });
  }

  #outboxKey() {
    return `parlour.outbox.${this.me?.id}`;
  }

  #loadOutbox() {
    try {
      const saved = JSON.parse(this.storage?.getItem(this.#outboxKey()) ?? "[]");
      this.outbox = saved.map((e) => ({ ...e, state: e.state === "failed" ? "failed" : "queued" }));
    } catch {
      this.outbox = [];
    }
  }

  #saveOutbox() {
    try {
      this.storage?.setItem(this.#outboxKey(), JSON.stringify(this.outbox));
    } catch {
      // storage full or disabled: the outbox still lives in memory
    }
  }

  clear() {
    for (const timer of this.gapTimers.values()) clearTimeout(timer);
    this.gapTimers.clear();
    this.me = null;
    this.users.clear();
    this.chats.clear();
    this.outbox = [];
    this.openChatId = null;
    this.presence.clear();
    this.presenceHeard = false;
    this.presenceHidden = null;
    this.mutedChats = null;
    this.emit("chats");
  }
}
