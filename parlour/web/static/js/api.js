// The HTTP side of Parlour: auth session (tokens) and the REST API.
//
// Tokens (docs/web-client.md): the access token lives only in a private field of this object. The refresh
// token lives in a private field too, mirrored to sessionStorage so a reload of this tab stays signed in.
// Refreshes are single-flight: with rotation and reuse detection, two concurrent refreshes with one token
// would revoke the session.

const REFRESH_KEY = "parlour.refresh";
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

export class Api {
  #access = null;
  #refresh = null;
  #expiresAt = 0;
  #refreshing = null;
  #timer = null;
  #failures = 0;

  constructor({ storage = globalThis.sessionStorage, fetchImpl = globalThis.fetch.bind(globalThis) } = {}) {
    this.storage = storage;
    this.fetch = fetchImpl;
    this.onSessionEnded = () => {};
    this.#refresh = this.#load();
  }

  get signedIn() {
    return this.#access !== null;
  }

  get canRestore() {
    return this.#refresh !== null;
  }

  async signUp({ username, password, displayName }) {
    const body = { username, password };
    if (displayName) body.display_name = displayName;
    return this.#send("POST", "/auth/users", body);
  }

  async logIn(username, password) {
    this.#adopt(await this.#send("POST", "/auth/sessions", { username, password }));
  }

  // Sign back in with the stored refresh token (after a reload). False when there is none or it is dead.
  async restore() {
    if (!this.#refresh) return false;
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
    if (!this.#refresh) throw new ApiError(401, { code: "session_revoked", detail: "Log in again." });
    try {
      this.#adopt(await this.#send("POST", "/auth/sessions/refresh", { refresh_token: this.#refresh }));
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
      if (!(error instanceof ApiError) || error.code !== "invalid_token") throw error;
      await this.refresh();
      return this.#send(method, path, body, this.#access);
    }
  }

  async #send(method, path, body, token) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await this.fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
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
    this.#access = pair.access_token;
    this.#refresh = pair.refresh_token;
    this.#expiresAt = Date.now() + pair.expires_in * 1000;
    this.#save(pair.refresh_token);
    this.#schedule(pair.expires_in * 1000 * REFRESH_AT);
  }

  #schedule(ms) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.refresh().catch(() => {}), Math.max(1_000, ms));
  }

  #end(error) {
    const wasSignedIn = this.#access !== null || this.#refresh !== null;
    this.#forget();
    if (wasSignedIn) this.onSessionEnded(error);
  }

  #forget() {
    clearTimeout(this.#timer);
    this.#access = null;
    this.#refresh = null;
    this.#expiresAt = 0;
    this.#save(null);
  }

  #load() {
    try {
      return this.storage?.getItem(REFRESH_KEY) || null;
    } catch {
      return null;
    }
  }

  #save(token) {
    try {
      if (token) this.storage?.setItem(REFRESH_KEY, token);
      else this.storage?.removeItem(REFRESH_KEY);
    } catch {
      // storage disabled: the session then lasts as long as the page
    }
  }

  // --- the REST API ---

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
