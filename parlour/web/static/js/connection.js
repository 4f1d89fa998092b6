// The WebSocket to the gateway: one socket at a time, a new pass for every (re)connect, `resume` on every
// open, reconnects with exponential backoff and jitter, heartbeat, and the browser's offline/online events.
//
// Status: connecting → syncing (resume sent) → live (resume.done) → waiting (backoff) / offline / ended.

import { ApiError } from "./api.js";

export const Status = Object.freeze({
  CONNECTING: "connecting",
  SYNCING: "syncing",
  LIVE: "live",
  WAITING: "waiting",
  OFFLINE: "offline",
  ENDED: "ended",
  STOPPED: "stopped",
});

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
const SYNC_WITHIN_MS = 15_000;

// Equal jitter: half the exponential delay, plus a random half. Never 0, so clients never stampede.
export function backoffDelay(attempt, random = Math.random, base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS) {
  const ceiling = Math.min(cap, base * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

// What a close code asks of the client (docs/protocol.md, parlour/gateway/domain/protocol.py):
//   "now"   the connection was cut, nothing is wrong with us (4000-4099 slow consumer, resume failed, ping):
//           reconnect at once (after a short random pause) and resume;
//   "retry" reconnect with exponential backoff (network loss 1006, 1011, 1012 restart, 1013, 4401 pass refused,
//           4029 rate limited: a new pass is fetched for every attempt anyway);
//   "stop"  reconnecting cannot help without the user (4403 origin refused, 4008 protocol abuse, 1009 too big).
export function closeAction(code) {
  if (code === 4403 || code === 4008 || code === 1009 || code === 1008) return "stop";
  if (code === 4029) return "retry";
  if (code >= 4000 && code < 4100) return "now";
  return "retry";
}

// The slowest a reconnect may be for a code: a rate limit or a restart asks for patience.
function minimumDelay(code) {
  if (code === 4029) return 5_000;
  if (code === 1012 || code === 1013) return 250;
  return 0;
}

export class Connection {
  #ws = null;
  #gen = 0;
  #attempt = 0;
  #timer = null;
  #pingTimer = null;
  #pongTimer = null;
  #syncTimer = null;
  #status = Status.STOPPED;
  #running = false;

  constructor({ api, handlers, WebSocketImpl = globalThis.WebSocket, random = Math.random, win = globalThis }) {
    this.api = api;
    this.handlers = handlers; // { resumeState(): {chat_id: seq}, onFrame(frame), onLive(), onStatus(status, info) }
    this.WebSocketImpl = WebSocketImpl;
    this.random = random;
    this.win = win;
    this.onOffline = () => this.#wentOffline();
    this.onOnline = () => this.retryNow();
  }

  get status() {
    return this.#status;
  }

  get live() {
    return this.#status === Status.LIVE;
  }

  start() {
    if (this.#running) return;
    this.#running = true;
    this.win.addEventListener("offline", this.onOffline);
    this.win.addEventListener("online", this.onOnline);
    this.#connect();
  }

  stop() {
    this.#running = false;
    this.win.removeEventListener("offline", this.onOffline);
    this.win.removeEventListener("online", this.onOnline);
    this.#drop(1000, "signed out");
    clearTimeout(this.#timer);
    this.#setStatus(Status.STOPPED);
  }

  // Write a frame if the connection is live; false means "not sent, keep it for later".
  send(frame) {
    if (!this.live || this.#ws?.readyState !== 1) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  retryNow() {
    if (!this.#running) return;
    this.#attempt = 0;
    if (!this.#ws) this.#connect();
  }

  async #connect() {
    clearTimeout(this.#timer);
    if (!this.#running || this.#ws) return;
    if (this.win.navigator?.onLine === false) {
      this.#setStatus(Status.OFFLINE);
      return;
    }
    const gen = ++this.#gen;
    this.#setStatus(Status.CONNECTING);
    let pass;
    try {
      pass = (await this.api.issuePass()).pass;
    } catch (error) {
      if (gen !== this.#gen) return;
      if (error instanceof ApiError && error.status === 401) return this.#end(error);
      return this.#retryLater(error instanceof ApiError && error.retryAfter ? error.retryAfter * 1000 : null);
    }
    if (gen !== this.#gen || !this.#running) return;
    const scheme = this.win.location.protocol === "https:" ? "wss:" : "ws:";
    // batch=1: frames that wait for the socket arrive as one message (a quarter of the server CPU each).
    const url = `${scheme}//${this.win.location.host}/gateway/ws?pass=${encodeURIComponent(pass)}&batch=1`;
    const ws = new this.WebSocketImpl(url);
    this.#ws = ws;
    ws.onopen = () => gen === this.#gen && this.#opened(ws);
    ws.onmessage = (event) => gen === this.#gen && this.#received(event.data);
    ws.onclose = (event) => gen === this.#gen && this.#closed(event.code, event.reason);
  }

  #opened(ws) {
    this.#setStatus(Status.SYNCING);
    ws.send(JSON.stringify({ type: "resume", chats: this.handlers.resumeState() }));
    this.#beat();
    // A gateway that never says resume.done must not keep the client from sending forever.
    this.#syncTimer = setTimeout(() => this.#becameLive(), SYNC_WITHIN_MS);
  }

  #received(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    clearTimeout(this.#pongTimer); // any frame proves the socket alive
    this.#pongTimer = null;
    for (const one of frame.type === "batch" && Array.isArray(frame.frames) ? frame.frames : [frame]) {
      this.#handle(one);
    }
  }

  #handle(frame) {
    if (frame.type === "ping") {
      this.#ws?.send(JSON.stringify(frame.id === undefined ? { type: "pong" } : { type: "pong", id: frame.id }));
      return;
    }
    if (frame.type === "pong") return;
    this.handlers.onFrame(frame);
    if (frame.type === "resume.done") this.#becameLive();
  }

  #becameLive() {
    clearTimeout(this.#syncTimer);
    if (this.#status !== Status.SYNCING) return;
    this.#attempt = 0;
    this.#setStatus(Status.LIVE);
    this.handlers.onLive();
  }

  #closed(code, reason) {
    this.#release();
    if (!this.#running) return;
    const action = closeAction(code);
    if (action === "stop") {
      this.#setStatus(Status.ENDED, { code, reason });
      return;
    }
    // "now" skips the backoff only the first time: a cut that repeats backs off like any other failure
    const delay = action === "now" && this.#attempt === 0 ? 100 + this.random() * 900 : null;
    this.#retryLater(delay, { code, reason, minimum: minimumDelay(code) });
  }

  #retryLater(delayMs = null, info = {}) {
    if (!this.#running) return;
    const delay = Math.max(info.minimum ?? 0, delayMs ?? backoffDelay(this.#attempt, this.random));
    this.#attempt += 1;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(), delay);
    this.#setStatus(Status.WAITING, { ...info, retryAt: Date.now() + delay });
  }

  #wentOffline() {
    this.#drop(4000, "browser offline");
    clearTimeout(this.#timer);
    if (this.#running) this.#setStatus(Status.OFFLINE);
  }

  #end(error) {
    this.#drop(1000, "session ended");
    this.#running = false;
    this.#setStatus(Status.ENDED, { error });
  }

  // Client-side heartbeat: a half-open socket (lost network, sleeping laptop) is noticed within seconds.
  #beat() {
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => {
      if (this.#ws?.readyState !== 1) return;
      this.#ws.send(JSON.stringify({ type: "ping" }));
      if (!this.#pongTimer) {
        this.#pongTimer = setTimeout(() => {
          this.#drop(4000, "heartbeat timeout");
          this.#retryLater();
        }, PONG_WITHIN_MS);
      }
    }, PING_EVERY_MS);
  }

  // Forget the current socket now (its late events are ignored) and close it.
  #drop(code, reason) {
    const ws = this.#ws;
    this.#gen += 1;
    this.#release();
    if (ws && ws.readyState <= 1) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
      }
    }
  }

  #release() {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    clearTimeout(this.#syncTimer);
    this.#pongTimer = null;
    this.#ws = null;
  }

  #setStatus(status, info = {}) {
    this.#status = status;
    this.handlers.onStatus(status, info);
  }
}
