// The service worker: shows a push from the notifications service and opens its chat on click.
// Served at /sw.js so its scope is the whole site (docs/web-client.md, "Notifications"). The payload is
// what parlour/notifications/adapters/webpush.py builds: {id, title, body, url, chat_id, count, tag}.

const ICON = "/static/favicon.svg";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function payloadOf(event) {
  try {
    return event.data ? event.data.json() : {};
  } catch {
    return { body: event.data.text() }; // not JSON: show the text as it is
  }
}

// Only same-site links: a payload cannot send a click elsewhere.
function chatUrl(url) {
  const target = new URL(typeof url === "string" ? url : "/", self.location.origin);
  return target.origin === self.location.origin ? target.href : new URL("/", self.location.origin).href;
}

self.addEventListener("push", (event) => {
  const data = payloadOf(event);
  const tag = typeof data.tag === "string" && data.tag ? data.tag : undefined;
  const options = {
    body: typeof data.body === "string" ? data.body : "",
    icon: ICON,
    tag, // a newer notification about the same chat replaces the older one
    renotify: Boolean(tag), // and still alerts
    data: { url: chatUrl(data.url), chatId: data.chat_id ?? null },
  };
  event.waitUntil(self.registration.showNotification(String(data.title || "Parlour"), options));
});

// A tab of this site already open is brought forward and told which chat to show; else one is opened.
async function openChat(url) {
  const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const tab = tabs.find((client) => new URL(client.url).origin === self.location.origin);
  if (!tab) return self.clients.openWindow(url);
  tab.postMessage({ type: "open-chat", url });
  try {
    return await tab.focus();
  } catch {
    return tab; // focusing needs the click's permission; the chat is open in the tab either way
  }
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openChat(chatUrl(event.notification.data?.url)));
});
