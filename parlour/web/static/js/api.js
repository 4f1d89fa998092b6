// The HTTP side of Parlour: auth session (tokens) and the REST API.
//
// Tokens (docs/web-client.md): the access token lives only in a private field of this object. The refresh
// token is an HttpOnly cookie that no script can read (`X-Parlour-Refresh: cookie` asks auth for it), shared
// by every tab of the browser: a new tab or a reload signs in with one refresh. With rotation and reuse
// detection, two refreshes presenting one token would revoke the session, so refreshes are single-flight in
// a tab and, through a Web Lock, one at a time across the browser's tabs.

const COOKIE_MODE = { "X-Parlour-Refresh": "cookie" };
const REFRESH_LOCK = "parlour.refresh";
// Whether this browser holds a refresh cookie, as far as the page knows (it cannot read the cookie): a
// first visit then shows the log-in form without a refused refresh. No secret: the cookie is the proof.
const SIGNED_IN_HINT = "parlour.signedIn";
const REFRESH_AT = 0.75; // refresh after 75 % of the access token's life
const REFRESH_MARGIN_MS = 30_000; // a request this close to expiry refreshes first
const RETRY_REFRESH_MS = [2_000, 5_000, 15_000, 30_000];

// A failed request: `status` 0 is a network failure; `code` is the problem document's stable code.
export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || (status === 0 ? "Cannot reach the server." : `HTTP ${status}`));
    this.name = "ApiError";
    this.status = status;
    this.code = problem.code || (status === 0 ? "network" : `http_${status}`);
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.retryAfter = problem.retry_after ?? null;
  }

  get isNetwork() {
    return this.status === 0;
  }
}

const SESSION_OVER = new Set(["invalid_refresh_token", "refresh_token_reused", "session_revoked", "invalid_token"]);

// The user an access token speaks for (its `sub` claim); the page only reads it, the server checks it.
function subjectOf(accessToken) {
  try {
    const payload = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).sub ?? null;
  } catch {
    return null;
  }
}

export class Api {
  #access = null;
  #subject = null;
  #expiresAt = 0;
  #refreshing = null;
  #timer = null;
  #failures = 0;

  constructor({
    storage = globalThis.localStorage,
    fetchImpl = globalThis.fetch.bind(globalThis),
    locks = globalThis.navigator?.locks,
  } = {}) {
    this.storage = storage;
    this.fetch = fetchImpl;
    this.locks = locks;
    this.onSessionEnded = () => {};
    // The cookie is the browser's: another tab that logs in as someone else replaces it, and this tab's next
    // refresh would then speak for that person. The app starts again as them instead.
    this.onUserChanged = () => {};
  }

  get signedIn() {
    return this.#access !== null;
  }

  get canRestore() {
    return this.#readHint() !== null;
  }

  async signUp({ username, password, displayName }) {
    const body = { username, password };
    if (displayName) body.display_name = displayName;
    return this.#send("POST", "/auth/users", body);
  }

  async logIn(username, password) {
    this.#adopt(await this.#send("POST", "/auth/sessions", { username, password }, null, COOKIE_MODE));
  }

  // Sign in with the refresh cookie (a reload, another tab). False when there is none or it is dead.
  async restore() {
    try {
      await this.refresh();
      return true;
    } catch (error) {
      if (error instanceof ApiError && SESSION_OVER.has(error.code)) return false;
      throw error;
    }
  }

  async logOut() {
    try {
      if (this.#access) await this.#send("DELETE", "/auth/sessions/current", undefined, this.#access);
    } catch {
      // the tokens are forgotten whatever the server says
    } finally {
      this.#forget();
    }
  }

  // Delete my account, the password confirming it; the tokens are then forgotten.
  async deleteAccount(password) {
    await this.request("DELETE", "/auth/users/me", { password });
    this.#forget();
  }

  // Rotate the token pair, once at a time; ends the session when the server refuses the refresh token.
  refresh() {
    if (!this.#refreshing) {
      this.#refreshing = this.#rotate().finally(() => {
        this.#refreshing = null;
      });
    }
    return this.#refreshing;
  }

  async #rotate() {
    const rotate = () => this.#send("POST", "/auth/sessions/refresh", undefined, null, COOKIE_MODE);
    try {
      this.#adopt(await (this.locks ? this.locks.request(REFRESH_LOCK, rotate) : rotate()));
      this.#failures = 0;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        this.#end(error);
      } else {
        const delay = RETRY_REFRESH_MS[Math.min(this.#failures, RETRY_REFRESH_MS.length - 1)];
        this.#failures += 1;
        this.#schedule(delay);
      }
      throw error;
    }
  }

  // An authenticated request; refreshes first when the access token is about to expire, and once on 401.
  async request(method, path, body) {
    if (!this.#access || Date.now() > this.#expiresAt - REFRESH_MARGIN_MS) await this.refresh();
    try {
      return await this.#send(method, path, body, this.#access);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      // ended elsewhere (another device, a password change): the page says so and asks for a login
      if (error.code === "session_revoked") this.#end(error);
      if (error.code !== "invalid_token") throw error;
      await this.refresh();
      return this.#send(method, path, body, this.#access);
    }
  }

  async #send(method, path, body, token, extraHeaders = {}) {
    const headers = { Accept: "application/json", ...extraHeaders };
    const raw = typeof Blob !== "undefined" && body instanceof Blob; // a file, sent as it is
    if (body !== undefined) headers["Content-Type"] = raw ? body.type || "application/octet-stream" : "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await this.fetch(path, {
        method,
        headers,
        body: body === undefined || raw ? body : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0);
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  #adopt(pair) {
    const subject = subjectOf(pair.access_token);
    if (this.#subject !== null && subject !== this.#subject) {
      clearTimeout(this.#timer);
      this.#access = null; // the sign-in hint stays: the cookie signs the new person in
      this.onUserChanged();
      return;
    }
    this.#subject = subject;
    this.#access = pair.access_token;
    this.#expiresAt = Date.now() + pair.expires_in * 1000;
    this.#writeHint(true);
    this.#schedule(pair.expires_in * 1000 * REFRESH_AT);
  }

  #schedule(ms) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.refresh().catch(() => {}), Math.max(1_000, ms));
  }

  #end(error) {
    const wasSignedIn = this.#access !== null;
    this.#forget();
    if (wasSignedIn) this.onSessionEnded(error);
  }

  #forget() {
    clearTimeout(this.#timer);
    this.#access = null;
    this.#subject = null;
    this.#expiresAt = 0;
    this.#writeHint(false);
  }

  #readHint() {
    try {
      return this.storage?.getItem(SIGNED_IN_HINT) ?? null;
    } catch {
      return "1"; // storage disabled: every load tries the cookie once
    }
  }

  #writeHint(signedIn) {
    try {
      if (signedIn) this.storage?.setItem(SIGNED_IN_HINT, "1");
      else this.storage?.removeItem(SIGNED_IN_HINT);
    } catch {
      // storage disabled: see #readHint
    }
  }

  // --- the REST API ---

  sessions() {
    return this.request("GET", "/auth/sessions").then((answer) => answer.items);
  }

  endSession(sessionId) {
    return this.request("DELETE", `/auth/sessions/${encodeURIComponent(sessionId)}`);
  }

  endOtherSessions() {
    return this.request("DELETE", "/auth/sessions/others");
  }

  changePassword(currentPassword, newPassword) {
    return this.request("PUT", "/auth/users/me/password", {
      current_password: currentPassword,
      new_password: newPassword,
    });
  }

  // My picture: the file's bytes as they are (auth decodes and re-encodes them).
  setAvatar(file) {
    return this.request("PUT", "/auth/users/me/avatar", file);
  }

  removeAvatar() {
    return this.request("DELETE", "/auth/users/me/avatar");
  }

  updateMe(displayName) {
    return this.request("PATCH", "/auth/users/me", { display_name: displayName });
  }

  me() {
    return this.request("GET", "/auth/users/me");
  }

  user(id) {
    return this.request("GET", `/auth/users/${encodeURIComponent(id)}`);
  }

  async searchUsers(q, limit = 10) {
    const params = new URLSearchParams({ q, limit: String(limit) });
    return (await this.request("GET", `/auth/users?${params}`)).items;
  }

  issuePass() {
    return this.request("POST", "/gateway/passes");
  }

  // Every chat of mine, following the list's cursor (a page at a time, at most `maxPages`).
  async chats(maxPages = 20) {
    const all = [];
    let cursor = null;
    for (let page = 0; page < maxPages; page += 1) {
      const params = new URLSearchParams({ limit: "100" });
      if (cursor) params.set("cursor", cursor);
      const data = await this.request("GET", `/api/chats?${params}`);
      all.push(...data.items);
      cursor = data.next_cursor;
      if (!cursor) break;
    }
    return all;
  }

  chat(id) {
    return this.request("GET", `/api/chats/${encodeURIComponent(id)}`);
  }

  createDirect(userId) {
    return this.request("POST", "/api/chats", { kind: "direct", user_id: userId });
  }

  createGroup(title, memberIds) {
    return this.request("POST", "/api/chats", { kind: "group", title, member_ids: memberIds });
  }

  // A group's management (as the member's role allows: messaging's policy decides, these only ask).
  renameChat(chatId, title) {
    return this.request("PATCH", `/api/chats/${encodeURIComponent(chatId)}`, { title });
  }

  addMember(chatId, userId) {
    return this.request("POST", `/api/chats/${encodeURIComponent(chatId)}/members`, { user_id: userId });
  }

  changeRole(chatId, userId, role) {
    const path = `/api/chats/${encodeURIComponent(chatId)}/members/${encodeURIComponent(userId)}`;
    return this.request("PATCH", path, { role });
  }

  removeMember(chatId, userId) {
    return this.request("DELETE", `/api/chats/${encodeURIComponent(chatId)}/members/${encodeURIComponent(userId)}`);
  }

  async messages(chatId, { afterSeq, beforeSeq, limit = 50 } = {}) {
    const params = new URLSearchParams({ limit: String(limit) });
    if (afterSeq !== undefined) params.set("after_seq", String(afterSeq));
    if (beforeSeq !== undefined) params.set("before_seq", String(beforeSeq));
    const data = await this.request("GET", `/api/chats/${encodeURIComponent(chatId)}/messages?${params}`);
    return { items: data.items, hasMore: data.has_more };
  }

  markRead(chatId, seq) {
    return this.request("POST", `/api/chats/${encodeURIComponent(chatId)}/read`, { seq });
  }

  // Presence of people I share a chat with (at most 500 ids): {users: [{user_id, status, last_seen}]}.
  presence(userIds) {
    const params = new URLSearchParams({ user_ids: userIds.join(",") });
    return this.request("GET", `/api/presence?${params}`);
  }

  presenceSettings() {
    return this.request("GET", "/api/presence/settings");
  }

  setPresenceSettings(hidden) {
    return this.request("PUT", "/api/presence/settings", { hidden });
  }

  // --- notifications (docs/subsystems/notifications.md) ---

  async vapidKey() {
    return (await this.request("GET", "/api/notifications/vapid-key")).public_key;
  }

  // `subscription` is PushSubscription.toJSON(): {endpoint, keys: {p256dh, auth}, expirationTime}.
  addPushSubscription(subscription) {
    return this.request("POST", "/api/notifications/push-subscriptions", subscription);
  }

  async pushSubscriptions() {
    return (await this.request("GET", "/api/notifications/push-subscriptions")).subscriptions;
  }

  notificationSettings() {
    return this.request("GET", "/api/notifications/settings");
  }

  setNotificationSettings(preview) {
    return this.request("PUT", "/api/notifications/settings", { preview });
  }

  async mutes() {
    return (await this.request("GET", "/api/notifications/mutes")).chat_ids;
  }

  setMute(chatId, muted) {
    return this.request(muted ? "PUT" : "DELETE", `/api/notifications/mutes/${encodeURIComponent(chatId)}`);
  }

  async webhooks() {
    return (await this.request("GET", "/api/notifications/webhooks")).webhooks;
  }

  addWebhook(url) {
    return this.request("POST", "/api/notifications/webhooks", { url });
  }

  removeWebhook(id) {
    return this.request("DELETE", `/api/notifications/webhooks/${encodeURIComponent(id)}`);
  }
}
