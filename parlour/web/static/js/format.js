// Dates, lengths and ids: small pure helpers.

export const BODY_MAX = 4000;

export function codePoints(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

export function newClientId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // insecure origins lack randomUUID
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function toDate(value) {
  if (value instanceof Date) return value;
  if (typeof value === "number") return new Date(value);
  return value ? new Date(value) : new Date();
}

export function dayKey(value) {
  const d = toDate(value);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

export function dayLabel(value, now = new Date()) {
  const d = toDate(value);
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  const sameYear = d.getFullYear() === now.getFullYear();
  return d.toLocaleDateString(undefined, {
    weekday: days < 7 ? "long" : undefined,
    day: "numeric",
    month: "long",
    year: sameYear ? undefined : "numeric",
  });
}

export function timeLabel(value) {
  return toDate(value).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

// The short time in the chat list: the time today, the weekday this week, else the date.
export function listTimeLabel(value, now = new Date()) {
  const d = toDate(value);
  const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
  if (days === 0) return timeLabel(d);
  if (days < 7) return d.toLocaleDateString(undefined, { weekday: "short" });
  return d.toLocaleDateString(undefined, { day: "numeric", month: "short" });
}

export function fullTimeLabel(value) {
  return toDate(value).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// "last seen …" for a presence `last_seen`: relative while recent (the caller renders it again as time
// passes), the date once it is a week old. A time ahead of this clock (skew) is "just now".
export function lastSeenLabel(value, now = Date.now()) {
  const seconds = (toDate(now).getTime() - toDate(value).getTime()) / 1000;
  if (seconds < 60) return "last seen just now";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `last seen ${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `last seen ${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days < 7) return `last seen ${days} day${days === 1 ? "" : "s"} ago`;
  return `last seen ${toDate(value).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" })}`;
}

// What a presence says in words: "online", "away", "last seen 5 min ago", or "offline" (hidden, or never
// seen); "" when nothing is known.
export function presenceText(presence, now = Date.now()) {
  if (!presence) return "";
  if (presence.status === "online" || presence.status === "away") return presence.status;
  return presence.lastSeen ? lastSeenLabel(presence.lastSeen, now) : "offline";
}

// A message body cut into text and links: [{ text }, { text, href }, ...]. Only http and https addresses
// become links, and the punctuation a sentence puts after an address (or a closing bracket it did not
// open) stays text.
const LINK = /\bhttps?:\/\/[^\s<>"]+/gi;

function linkParts(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const address = trimTrailing(match[0]);
    const href = httpHref(address);
    if (!href) continue;
    if (match.index > last) parts.push({ text: text.slice(last, match.index) });
    parts.push({ text: address, href });
    last = match.index + address.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

function trimTrailing(address) {
  for (;;) {
    const trimmed = address.replace(/[.,;:!?'*]+$/, "");
    const unopened = trimmed.endsWith(")") && trimmed.split("(").length < trimmed.split(")").length;
    const next = unopened ? trimmed.slice(0, -1) : trimmed;
    if (next === address) return address;
    address = next;
  }
}

function httpHref(address) {
  try {
    const url = new URL(address);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// `@username` as messaging reads it (parlour/messaging/domain/model.py `_MENTION`): a username of 3-32
// of a-z 0-9 _ . -, not inside a word, without the dots that end a sentence.
const MENTION = /(?<![\w@])@([a-z0-9_.-]{3,32})(?![a-z0-9_-])/gi;

// A body cut into text, links and mentions: [{ text }, { text, href }, { text, mention }]; `mention` is
// the lower-cased username, and only names that `isMention` accepts (the chat's members) count.
export function bodyParts(text, isMention = () => false) {
  const parts = [];
  for (const part of linkParts(text)) {
    if (part.href) parts.push(part);
    else parts.push(...mentionParts(part.text, isMention));
  }
  return parts;
}

function mentionParts(text, isMention) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(MENTION)) {
    const name = match[1].replace(/\.+$/, "");
    if (name.length < 3 || !isMention(name.toLowerCase())) continue;
    if (match.index > last) parts.push({ text: text.slice(last, match.index) });
    parts.push({ text: `@${name}`, mention: name.toLowerCase() });
    last = match.index + 1 + name.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

// The `@prefix` being typed just before `caret`, if any: { start, prefix } (prefix may be empty).
export function mentionBeingTyped(text, caret) {
  const match = /(?:^|[^\w@])@([a-z0-9_.-]{0,32})$/i.exec(text.slice(0, caret));
  if (!match) return null;
  const prefix = match[1];
  return { start: caret - prefix.length - 1, prefix };
}
