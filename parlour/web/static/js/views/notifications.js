// Notifications on screen: the settings dialog (push on this browser, the body preview, webhooks with
// their last delivery) and the mute button of a chat's header. The service worker (/sw.js) shows pushes.

import { ApiError } from "../api.js";
import { h } from "../dom.js";
import { fullTimeLabel } from "../format.js";
import { dialogShell } from "./dialogs.js";

const WORKER_URL = "/sw.js";

// Register the service worker; false where the browser has none (or refuses it).
export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return false;
  try {
    await navigator.serviceWorker.register(WORKER_URL, { scope: "/" });
    return true;
  } catch {
    return false;
  }
}

function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (char) => char.charCodeAt(0));
}

function sameKey(buffer, bytes) {
  if (!buffer) return false;
  const have = new Uint8Array(buffer);
  return have.length === bytes.length && have.every((byte, i) => byte === bytes[i]);
}

// Why push cannot work here, in words, or null when it might.
export function pushUnsupportedReason() {
  if (!window.isSecureContext) return "Notifications need the site on https://.";
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window))
    return "This browser cannot show notifications from a website.";
  if (Notification.permission === "denied") return blockedText();
  return null;
}

function blockedText() {
  return "The browser blocks notifications from this site. Allow them in its site settings, then try again.";
}

// Ask for permission, subscribe with the server's VAPID key, and give the subscription to the server.
// Resolves with a sentence for the person; throws an Error whose message says what went wrong.
export async function enablePush(api) {
  const unsupported = pushUnsupportedReason();
  if (unsupported) throw new Error(unsupported);
  const permission = await Notification.requestPermission();
  if (permission !== "granted") throw new Error(permission === "denied" ? blockedText() : "Notifications were not allowed.");
  await registerServiceWorker();
  const registration = await navigator.serviceWorker.ready;
  const key = keyBytes(await api.vapidKey());
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options?.applicationServerKey, key)) {
    await subscription.unsubscribe(); // made with another server key: its pushes would be refused
    subscription = null;
  }
  try {
    subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  } catch {
    throw new Error("The browser could not reach its push service (a private window has none), so it cannot receive notifications here.");
  }
  await api.addPushSubscription(subscription.toJSON());
  return "Notifications are on for this browser.";
}

function webhookStatus(webhook) {
  if (!webhook.enabled) return `Disabled: ${webhook.disabled_reason || "deliveries kept failing"}.`;
  if (!webhook.last_attempt_at) return "No delivery yet.";
  const when = fullTimeLabel(webhook.last_attempt_at);
  const answer = webhook.last_status === null ? "no answer" : `HTTP ${webhook.last_status}`;
  const failing = webhook.failing_since ? ` Failing since ${fullTimeLabel(webhook.failing_since)}.` : "";
  return `Last delivery ${when}: ${answer}.${failing}`;
}

function pushSection(api) {
  const button = h("button", { type: "button", class: "primary" }, "Enable notifications");
  const status = h("p", { id: "push-status", class: "hint", role: "status" });
  button.setAttribute("aria-describedby", "push-status");
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Asking the browser…";
    try {
      status.textContent = await enablePush(api);
    } catch (error) {
      status.textContent = error instanceof ApiError ? `The server refused: ${error.message}` : error.message;
    } finally {
      button.disabled = false;
    }
  });
  const element = h("section", { class: "setting-group", "aria-labelledby": "push-heading" },
    h("h3", { id: "push-heading" }, "This browser"), button, status);
  return {
    element,
    async refresh() {
      const reason = pushUnsupportedReason();
      if (reason) {
        status.textContent = reason;
        return;
      }
      const registration = await navigator.serviceWorker.getRegistration("/");
      const subscription = await registration?.pushManager.getSubscription();
      status.textContent =
        subscription && Notification.permission === "granted"
          ? "Notifications are on for this browser."
          : "Notifications are off for this browser.";
    },
  };
}

function previewSection(api) {
  const box = h("input", { type: "checkbox", id: "notification-preview", "aria-describedby": "notification-preview-hint" });
  const error = h("p", { class: "field-error", role: "alert" });
  box.addEventListener("change", async () => {
    const wanted = box.checked;
    box.disabled = true;
    error.textContent = "";
    try {
      box.checked = (await api.setNotificationSettings(wanted)).preview;
    } catch {
      box.checked = !wanted;
      error.textContent = "Could not change the setting. Try again.";
    } finally {
      box.disabled = false;
    }
  });
  const element = h("div", { class: "field" },
    h("label", { for: "notification-preview" }, box, " Show the message in notifications"),
    h("p", { id: "notification-preview-hint", class: "hint" }, "Off: only “New message in …”, without who wrote what."),
    error);
  return {
    element,
    async refresh() {
      box.checked = (await api.notificationSettings()).preview;
    },
  };
}

function webhookSection(api) {
  const list = h("ul", { class: "webhooks", "aria-label": "Your webhooks" });
  const empty = h("p", { class: "hint" }, "No webhooks.");
  const url = h("input", { id: "webhook-url", type: "url", required: true, autocomplete: "off", placeholder: "https://example.com/hook" });
  const error = h("p", { class: "field-error", role: "alert" });
  const secret = h("div", { class: "webhook-secret", hidden: true });
  const add = h("button", { type: "submit", class: "secondary" }, "Add webhook");

  function render(webhooks) {
    empty.hidden = webhooks.length > 0;
    list.replaceChildren(
      ...webhooks.map((webhook) =>
        h("li", { class: "webhook", dataset: { enabled: String(webhook.enabled) } },
          h("span", { class: "webhook-url" }, webhook.url),
          h("span", { class: "webhook-status" }, webhookStatus(webhook)),
          h("button", {
            type: "button",
            class: "link",
            "aria-label": `Remove webhook ${webhook.url}`,
            onclick: () => remove(webhook),
          }, "Remove"),
        ),
      ),
    );
  }

  async function refresh() {
    render(await api.webhooks());
  }

  async function remove(webhook) {
    error.textContent = "";
    try {
      await api.removeWebhook(webhook.id);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) error.textContent = e.message;
    }
    await refresh().catch(() => {});
  }

  const form = h("form", {
    class: "webhook-form",
    novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      secret.hidden = true;
      if (!url.value.trim()) {
        error.textContent = "Give the address the notifications should be posted to.";
        url.focus();
        return;
      }
      add.disabled = true;
      try {
        const created = await api.addWebhook(url.value.trim());
        url.value = "";
        secret.replaceChildren(
          h("p", {}, "Its signing secret, shown this once: copy it now."),
          h("output", { class: "secret", "aria-label": "Signing secret" }, created.secret),
        );
        secret.hidden = false;
        await refresh();
      } catch (e) {
        error.textContent = e.message;
      } finally {
        add.disabled = false;
      }
    },
  },
  h("label", { for: "webhook-url" }, "Webhook URL"),
  h("div", { class: "webhook-add" }, url, add),
  error);

  const element = h("section", { class: "setting-group", "aria-labelledby": "webhooks-heading" },
    h("h3", { id: "webhooks-heading" }, "Webhooks"),
    h("p", { class: "hint" }, "Each notification is also posted, signed, to these addresses."),
    list, empty, form, secret);
  return {
    element,
    refresh,
    reset() {
      url.value = "";
      error.textContent = "";
      secret.replaceChildren();
      secret.hidden = true;
    },
  };
}

export function notificationsDialog({ api }) {
  const { dialog, error } = dialogShell("notification-settings", "Notifications");
  const push = pushSection(api);
  const preview = previewSection(api);
  const webhooks = webhookSection(api);
  dialog.append(push.element, preview.element, webhooks.element, error);
  return {
    dialog,
    async open() {
      error.textContent = "";
      webhooks.reset();
      dialog.showModal();
      const loaded = await Promise.allSettled([push.refresh(), preview.refresh(), webhooks.refresh()]);
      if (loaded.some((outcome) => outcome.status === "rejected")) error.textContent = "Some settings could not be loaded.";
    },
  };
}

// The header's "Mute" toggle for the open chat (hidden without the notifications service).
export function muteButton({ store, onToggle }) {
  let chatId = null;
  const button = h("button", {
    type: "button",
    class: "secondary mute",
    "aria-label": "Mute notifications for this chat",
    hidden: true,
  });
  const error = h("span", { class: "field-error", role: "alert" });
  button.addEventListener("click", async () => {
    const id = chatId;
    const wanted = !store.isMuted(id);
    button.disabled = true;
    error.textContent = "";
    try {
      await onToggle(id, wanted);
    } catch {
      error.textContent = "Could not change the mute. Try again.";
    } finally {
      button.disabled = false;
    }
  });

  function render() {
    button.hidden = store.mutedChats === null || !chatId;
    const muted = store.isMuted(chatId);
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = muted ? "Muted" : "Mute";
  }

  const off = store.on("mutes", render);
  return {
    element: h("span", { class: "mute-wrap" }, button, error),
    show(id) {
      chatId = id;
      render();
    },
    dispose: off,
  };
}
