// Replays what a real server said into the web client's Store, and prints what the Store made of it.
//
//   node web_store_replay.mjs <file URL of store.js> <replay.json>
//
// replay.json: {"me": <GET /auth/users/me>, "steps": [...]}, each step one of
//   {"op": "setChats", "data": [<ChatSummaryOut>...]}   the items of GET /api/chats
//   {"op": "upsertChat", "data": <ChatOut>}             GET /api/chats/{id}, or a create
//   {"op": "history", "chatId": id, "data": <HistoryOut>}
//   {"op": "enqueue", "chatId": id, "body": text, "clientId": id}   a message typed, sent with that id
//   {"op": "frame", "data": <server frame>}
//   {"op": "snapshot", "name": name}
// Output: {name: {chatId: <chat state>}} as JSON.

import { readFileSync } from "node:fs";

const { Store, messageFromRest } = await import(process.argv[2]);
const replay = JSON.parse(readFileSync(process.argv[3], "utf8"));

function describe(store) {
  const chats = {};
  for (const chat of store.chats.values()) {
    chats[chat.id] = {
      kind: chat.kind,
      title: chat.title,
      placeholder: chat.placeholder,
      memberIds: [...chat.memberIds].sort(),
      peerId: chat.peerId ?? null,
      lastSeq: chat.lastSeq,
      readSeq: chat.readSeq,
      syncedSeq: chat.syncedSeq,
      unread: chat.unread,
      peerReads: Object.fromEntries(chat.peerReads),
      lastMessage: chat.lastMessage,
      messages: store.sortedMessages(chat),
      outbox: store.outboxOf(chat.id).length,
    };
  }
  return JSON.parse(JSON.stringify(chats)); // as it is now: later steps change these objects
}

const store = new Store({ storage: null });
store.setMe(replay.me);
const snapshots = {};
for (const step of replay.steps) {
  if (step.op === "setChats") store.setChats(step.data);
  else if (step.op === "upsertChat") store.upsertChat(step.data);
  else if (step.op === "history") store.addOlder(step.chatId, step.data.items.map(messageFromRest), step.data.has_more);
  else if (step.op === "enqueue") store.enqueue(step.chatId, step.body).clientId = step.clientId;
  else if (step.op === "frame") store.applyFrame(step.data);
  else if (step.op === "snapshot") snapshots[step.name] = describe(store);
  else throw new Error(`unknown step ${step.op}`);
}
store.clear(); // no gap timer may keep node running
console.log(JSON.stringify(snapshots));
