"""Notifications in the web client, in headless Chromium against a real Parlour (embedded, notifications on).

The service worker at /sw.js is registered; a push handed to it through the DevTools protocol
(`ServiceWorker.deliverPushMessage`) shows a notification, and its click opens the chat. The settings
dialog's controls and the chat header's mute reach the notifications API (read back over HTTP).
docs/web-client.md, "Notifications".
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.async_api import Browser, CDPSession, Worker, expect

from tests.clients import PASSWORD, log_in
from tests.e2e.browser import DESKTOP, PHONE, ChatPage, eventually
from tests.harness import make_settings, running_parlour

pytestmark = pytest.mark.browser


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    settings = make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}",
        notifications_allow_private_targets=True,  # webhooks to 127.0.0.1
        notifications_delay_seconds=0.2,
        notifications_delivery_attempts=1,  # a failed webhook delivery is parked at once
    )
    async with running_parlour(settings) as url:
        yield url


async def person(
    people: list[ChatPage], browser: Browser, base_url: str, name: str, viewport: dict[str, int] = DESKTOP
) -> ChatPage:
    page = await ChatPage.open(browser, base_url, f"{name.lower()}{uuid.uuid4().hex[:6]}", name, viewport=viewport)
    people.append(page)
    await page.sign_up()
    return page


async def direct_chat(
    people: list[ChatPage], browser: Browser, base_url: str, viewport: dict[str, int] = DESKTOP
) -> tuple[ChatPage, ChatPage, str]:
    """Ada and Bob, Bob in their direct chat; its id."""
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob", viewport)
    await bob.start_direct_chat(ada)
    match = re.fullmatch(r".*#/chat/(.+)", bob.page.url)
    assert match, bob.page.url
    return ada, bob, unquote(match.group(1))


async def to_the_list(page: ChatPage) -> None:
    """Leave the open chat: the back link at phone width; at desktop width the list is beside it."""
    back = page.page.get_by_role("link", name="Back to chats")
    if await back.is_visible():
        await back.click()
    else:
        await page.page.evaluate("location.hash = '#/'")
    await expect(page.page).to_have_url(re.compile(r"#/$"))


async def bearer(base_url: str, who: ChatPage) -> dict[str, str]:
    """The Authorization header of a session of `who`'s own (one login: logins are rate-limited)."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        pair = await log_in(http, who.username)
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def api_get(base_url: str, who: ChatPage, path: str) -> Any:
    """What the server says to `who` (logged in on a session of its own)."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        pair = await log_in(http, who.username)
        response = await http.get(path, headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert response.status_code == 200, response.text
        return response.json()


async def registration_id(cdp: CDPSession, scope: str) -> str:
    """The DevTools id of the service worker registration of `scope`, once its worker is activated: a push
    delivered to a registration whose worker is still installing is dropped."""
    found: dict[str, str] = {}
    activated: set[str] = set()

    def registrations(event: dict[str, Any]) -> None:
        for registration in event["registrations"]:
            if registration["scopeURL"] == scope and not registration.get("isDeleted"):
                found["id"] = registration["registrationId"]

    def versions(event: dict[str, Any]) -> None:
        activated.update(v["registrationId"] for v in event["versions"] if v.get("status") == "activated")

    cdp.on("ServiceWorker.workerRegistrationUpdated", registrations)
    cdp.on("ServiceWorker.workerVersionUpdated", versions)
    await cdp.send("ServiceWorker.enable")
    await eventually(lambda: "id" in found and found["id"] in activated)
    return found["id"]


# Chromium's getNotifications() can lose a context's first notification for good when it is read while that
# notification is still being shown: the worker's showNotification resolves, every later read finds nothing,
# and a second push shows (1 run of the suite in 3 failed on it; 2 in 25 of this test alone). Read only after
# the worker's own showNotification has settled, 0 in 50. So the worker counts the shows that settled.
COUNT_SHOWN = """() => {
    const registration = self.registration;
    const show = registration.showNotification.bind(registration);
    self.settledShows = 0;
    registration.showNotification = (...args) => show(...args).finally(() => { self.settledShows += 1; });
}"""


@dataclass
class DevToolsPush:
    """Pushes handed to a page's service worker through DevTools, each awaited until the worker showed it."""

    cdp: CDPSession
    worker: Worker
    origin: str
    registration: str
    delivered: int = 0

    @classmethod
    async def to(cls, page: ChatPage, base_url: str) -> DevToolsPush:
        """Ready to push to `page`'s worker (its registration activated, its shows counted)."""
        cdp = await page.context.new_cdp_session(page.page)
        registration = await registration_id(cdp, f"{base_url}/")
        worker = await service_worker(page)
        await worker.evaluate(COUNT_SHOWN)
        return cls(cdp, worker, base_url, registration)

    async def deliver(self, data: str) -> None:
        """Push `data` (the payload as the push service hands it over) and wait until it was shown."""
        message = {"origin": self.origin, "registrationId": self.registration, "data": data}
        await self.cdp.send("ServiceWorker.deliverPushMessage", message)
        self.delivered += 1
        await eventually(self._all_shown)

    async def _all_shown(self) -> bool:
        settled: int = await self.worker.evaluate("() => self.settledShows")
        return settled >= self.delivered


async def notifications(page: ChatPage) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = await page.page.evaluate(
        """async () => {
            const registration = await navigator.serviceWorker.ready;
            return (await registration.getNotifications()).map((n) => ({
                title: n.title, body: n.body, tag: n.tag, url: n.data?.url ?? null,
            }));
        }"""
    )
    return shown


async def service_worker(page: ChatPage) -> Worker:
    await eventually(lambda: any(w.url.endswith("/sw.js") for w in page.context.service_workers))
    return next(w for w in page.context.service_workers if w.url.endswith("/sw.js"))


# A click as the browser reports it: the worker's own `notificationclick` listener runs on a
# NotificationEvent for the shown notification. Headless Chromium has no notification to click and DevTools
# no command for it, so the event is dispatched in the worker; `waitUntil` (the browser's, for trusted
# events only) is the test's, and the test waits for what the listener handed it.
CLICK_IN_WORKER = """async () => {
    const [notification] = await self.registration.getNotifications();
    const event = new NotificationEvent("notificationclick", { notification });
    const waited = [];
    Object.defineProperty(event, "waitUntil", { value: (promise) => waited.push(promise) });
    self.dispatchEvent(event);
    await Promise.all(waited);
    return waited.length;
}"""


def payload(chat_id: str, body: str) -> str:
    """What parlour/notifications/adapters/webpush.py's push_payload sends."""
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "title": "Ada",
            "body": body,
            "url": f"/#/chat/{chat_id}",
            "chat_id": chat_id,
            "count": 1,
            "tag": f"chat-{chat_id}",
        }
    )


async def test_a_push_through_devtools_shows_a_notification_that_a_newer_one_replaces_and_its_click_opens_the_chat(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    _, bob, chat_id = await direct_chat(people, browser, base_url)
    await bob.context.grant_permissions(["notifications"], origin=base_url)
    worker = await bob.page.evaluate(
        "async () => { const r = await navigator.serviceWorker.ready; return [r.scope, r.active.scriptURL]; }"
    )
    assert worker == [f"{base_url}/", f"{base_url}/sw.js"]
    async with httpx.AsyncClient(base_url=base_url) as http:
        served = await http.get("/sw.js")
    assert served.headers["content-type"].startswith("text/javascript")
    assert "script-src 'self'" in served.headers["content-security-policy"]
    await to_the_list(bob)

    push = await DevToolsPush.to(bob, base_url)
    await push.deliver(payload(chat_id, "first"))
    assert await notifications(bob) == [
        {"title": "Ada", "body": "first", "tag": f"chat-{chat_id}", "url": f"{base_url}/#/chat/{chat_id}"}
    ]
    await push.deliver(payload(chat_id, "second"))
    assert await _bodies(bob) == ["second"]  # the same tag: replaced, not added

    waited = await push.worker.evaluate(CLICK_IN_WORKER)
    assert waited == 1
    await expect(bob.conversation_title).to_have_text("Ada")
    await expect(bob.page).to_have_url(f"{base_url}/#/chat/{chat_id}")
    assert await notifications(bob) == []  # the click closed it


async def _bodies(page: ChatPage) -> list[str]:
    """The bodies shown, sorted (getNotifications promises no order)."""
    return sorted(n["body"] for n in await notifications(page))


async def test_a_push_that_is_not_json_or_points_elsewhere_still_shows_and_opens_only_this_site(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    _, bob, _ = await direct_chat(people, browser, base_url)
    await bob.context.grant_permissions(["notifications"], origin=base_url)
    push = await DevToolsPush.to(bob, base_url)
    await push.deliver(json.dumps({"title": "<b>x</b>", "body": "hi", "url": "https://elsewhere.example/", "tag": "t"}))
    assert await notifications(bob) == [{"title": "<b>x</b>", "body": "hi", "tag": "t", "url": f"{base_url}/"}]
    await push.deliver("plain")
    assert await _bodies(bob) == ["hi", "plain"]  # no tag: shown beside the other
    plain = {"title": "Parlour", "body": "plain", "tag": "", "url": f"{base_url}/"}
    assert plain in await notifications(bob)


async def test_mute_in_the_chat_header_reaches_the_api_and_shows_in_the_chat_list(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    for viewport in (DESKTOP, PHONE):
        _, bob, chat_id = await direct_chat(people, browser, base_url, viewport)
        mute = bob.page.get_by_role("button", name="Mute notifications for this chat")
        await expect(mute).to_have_attribute("aria-pressed", "false")
        await expect(mute).to_be_in_viewport()
        await mute.click()
        await expect(mute).to_have_attribute("aria-pressed", "true")
        await expect(mute).to_have_text("Muted")
        assert (await api_get(base_url, bob, "/api/notifications/mutes"))["chat_ids"] == [chat_id]
        await bob.screenshot(f"notifications-muted-{viewport['width']}")

        await to_the_list(bob)
        await expect(bob.chat_row("Ada")).to_have_accessible_name(re.compile(r"^Ada, muted\."))
        await expect(bob.chat_row("Ada").locator(".muted-mark")).to_be_visible()

        await bob.open_chat("Ada")
        await mute.click()
        await expect(mute).to_have_attribute("aria-pressed", "false")
        assert (await api_get(base_url, bob, "/api/notifications/mutes"))["chat_ids"] == []
        await bob.page.reload()  # what the list shows comes from the server
        await bob.expect_connection("live")
        await to_the_list(bob)
        await expect(bob.chat_row("Ada")).to_have_accessible_name(re.compile(r"^Ada\."))


async def open_settings(page: ChatPage) -> None:
    await page.page.get_by_role("button", name="Notifications").click()
    await expect(page.page.get_by_role("dialog", name="Notifications")).to_be_visible()


async def test_the_preview_toggle_and_webhooks_in_the_settings_reach_the_api(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    bob = await person(people, browser, base_url, "Bob", PHONE)
    await open_settings(bob)
    dialog = bob.page.get_by_role("dialog", name="Notifications")
    preview = dialog.get_by_role("checkbox", name="Show the message in notifications")
    await expect(preview).to_be_checked()
    await preview.uncheck()
    await expect(preview).to_be_enabled()
    assert await api_get(base_url, bob, "/api/notifications/settings") == {"preview": False}

    await dialog.get_by_label("Webhook URL").fill("http://127.0.0.1:9/hook")
    await dialog.get_by_role("button", name="Add webhook").click()
    secret = dialog.get_by_label("Signing secret")
    await expect(secret).to_have_text(re.compile(r"^whsec_"))
    hooks = dialog.get_by_role("list", name="Your webhooks")
    await expect(hooks.get_by_role("listitem")).to_have_text(["http://127.0.0.1:9/hookNo delivery yet.Remove"])
    [stored] = (await api_get(base_url, bob, "/api/notifications/webhooks"))["webhooks"]
    assert stored["url"] == "http://127.0.0.1:9/hook"
    await bob.screenshot("notifications-settings-phone")

    await dialog.get_by_role("button", name="Close").click()
    await open_settings(bob)  # the secret is shown once; the setting is read back
    await expect(secret).to_have_count(0)
    await expect(preview).not_to_be_checked()
    await dialog.get_by_role("button", name="Remove webhook http://127.0.0.1:9/hook").click()
    await expect(hooks.get_by_role("listitem")).to_have_count(0)
    assert (await api_get(base_url, bob, "/api/notifications/webhooks"))["webhooks"] == []


async def test_enable_notifications_explains_a_refusal(people: list[ChatPage], browser: Browser, base_url: str) -> None:
    bob = await person(people, browser, base_url, "Bob")
    await bob.page.evaluate("() => { Notification.requestPermission = async () => 'denied'; }")  # the person said no
    await open_settings(bob)
    await bob.page.get_by_role("button", name="Enable notifications").click()
    await expect(bob.page.locator("#push-status")).to_have_text(re.compile("blocks notifications from this site"))
    assert bob.count("POST /api/notifications/push-subscriptions") == 0


def browser_keys() -> dict[str, str]:
    """A subscription's keys as a browser makes them: a P-256 point and a 16-byte secret, base64url."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"p256dh": _b64url(point), "auth": _b64url(secrets.token_bytes(16))}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_enable_notifications_subscribes_with_the_servers_key_and_hands_the_subscription_over(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    bob = await person(people, browser, base_url, "Bob")
    await bob.context.grant_permissions(["notifications"], origin=base_url)
    endpoint = f"{base_url}/push-service/{uuid.uuid4().hex}"
    # Headless Chromium reaches no push service, so PushManager.subscribe is the browser's stand-in: it
    # records the options it was given and answers as a browser does.
    await bob.page.evaluate(
        """([endpoint, keys]) => {
            PushManager.prototype.getSubscription = async () => null;
            PushManager.prototype.subscribe = async function (options) {
                window.subscribedWith = options;
                return { options, toJSON: () => ({ endpoint, expirationTime: null, keys }) };
            };
        }""",
        [endpoint, browser_keys()],
    )
    await open_settings(bob)
    await bob.page.get_by_role("button", name="Enable notifications").click()
    await expect(bob.page.locator("#push-status")).to_have_text("Notifications are on for this browser.")

    vapid = (await api_get(base_url, bob, "/api/notifications/vapid-key"))["public_key"]
    used = await bob.page.evaluate(
        """() => ({
            userVisibleOnly: window.subscribedWith.userVisibleOnly,
            key: btoa(String.fromCharCode(...window.subscribedWith.applicationServerKey))
                .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, ""),
        })"""
    )
    assert used == {"userVisibleOnly": True, "key": vapid}
    subscriptions = (await api_get(base_url, bob, "/api/notifications/push-subscriptions"))["subscriptions"]
    assert [s["endpoint"] for s in subscriptions] == [endpoint]


async def test_enable_notifications_explains_a_browser_without_a_push_service(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    bob = await person(people, browser, base_url, "Bob")
    await bob.context.grant_permissions(["notifications"], origin=base_url)
    await open_settings(bob)
    await bob.page.get_by_role("button", name="Enable notifications").click()
    # headless Chromium has no push service: the real subscribe fails, and the page says so (if some build
    # had one, it would succeed, and the subscription would be handed over)
    await expect(bob.page.locator("#push-status")).to_have_text(
        re.compile("could not reach its push service|Notifications are on for this browser")
    )
    # Chromium itself says so on the console (a Playwright context is incognito): the browser's words, not
    # the page's error
    bob.problems[:] = [p for p in bob.problems if "does not support the Push API in incognito mode" not in p]


async def test_a_failing_webhook_shows_its_last_delivery_in_the_settings(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    async with httpx.AsyncClient(base_url=base_url, headers=await bearer(base_url, bob)) as http:
        added = await http.post("/api/notifications/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert added.status_code == 201, added.text
        await bob.close()  # Bob is offline on every session: Ada's message is for his webhook
        await expect(ada.page.locator(".conversation-subtitle .presence-text")).to_have_text(re.compile("last seen"))
        await ada.send("are you there?")

        async def attempted() -> bool:
            [hook] = (await http.get("/api/notifications/webhooks")).json()["webhooks"]
            return hook["last_attempt_at"] is not None

        await eventually(attempted, within_s=20)
    again = await ChatPage.open(browser, base_url, bob.username, bob.display_name)
    people.append(again)
    await again.log_in(bob.username, PASSWORD)
    await again.expect_chat_screen()
    await open_settings(again)
    hooks = again.page.get_by_role("list", name="Your webhooks")
    await expect(hooks.get_by_role("listitem")).to_contain_text(
        re.compile(r"Last delivery .+: no answer\. Failing since ")
    )
    await again.screenshot("notifications-webhook-failing")


# No tab of the site open: the worker opens one at the chat. A dispatched click carries no user activation,
# so the browser would refuse `openWindow`; the worker's `clients` answer as with no tab and record the call.
CLICK_WITH_NO_TAB = """async () => {
    const opened = [];
    Object.defineProperty(self.clients, "matchAll", { configurable: true, value: async () => [] });
    Object.defineProperty(self.clients, "openWindow", { configurable: true, value: async (url) => opened.push(url) });
    const [notification] = await self.registration.getNotifications();
    const event = new NotificationEvent("notificationclick", { notification });
    const waited = [];
    Object.defineProperty(event, "waitUntil", { value: (promise) => waited.push(promise) });
    self.dispatchEvent(event);
    await Promise.all(waited);
    delete self.clients.matchAll;
    delete self.clients.openWindow;
    return opened;
}"""


async def test_a_click_with_no_tab_open_opens_one_at_the_chat(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    _, bob, chat_id = await direct_chat(people, browser, base_url)
    await bob.context.grant_permissions(["notifications"], origin=base_url)
    push = await DevToolsPush.to(bob, base_url)
    await push.deliver(payload(chat_id, "hello"))
    assert await _bodies(bob) == ["hello"]
    opened = await push.worker.evaluate(CLICK_WITH_NO_TAB)
    assert opened == [f"{base_url}/#/chat/{chat_id}"]
