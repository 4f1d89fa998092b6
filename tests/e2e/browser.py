"""Driving the web client in Debian's headless Chromium with Playwright: launch, and a page object per person.

`ChatPage` speaks to the page the way a person does (labels, roles, keys), so the tests read as behaviour
and double as an accessibility check: a control without an accessible name cannot be found.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    ViewportSize,
    WebSocket,
    async_playwright,
    expect,
)

from tests.clients import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
DESKTOP = {"width": 1100, "height": 720}
PHONE = {"width": 390, "height": 780}
TIMEOUT_MS = 10_000
BROWSER_NETWORK_NOISE = ("Failed to load resource", "net::ERR_", "WebSocket connection to")


def require_chromium() -> None:
    """Skip unless Debian's chromium is installed (fail instead under PARLOUR_TEST_REQUIRE_SERVICES=1)."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`"
    if os.environ.get("PARLOUR_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (PARLOUR_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(message)


async def eventually(check: Callable[[], bool | Awaitable[bool]], within_s: float = TIMEOUT_MS / 1000) -> None:
    """Wait until `check()` holds (what page events recorded, or what the page says), failing after `within_s`."""
    async with asyncio.timeout(within_s):
        while True:
            outcome = check()
            if await outcome if inspect.isawaitable(outcome) else outcome:
                return
            await asyncio.sleep(0.05)


@asynccontextmanager
async def launched_chromium() -> AsyncIterator[Browser]:
    """Headless Chromium, closed on exit."""
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class ChatPage:
    """One person in their own browser context (own storage, own network switch)."""

    context: BrowserContext
    page: Page
    base_url: str
    username: str
    display_name: str
    problems: list[str] = field(default_factory=list)
    sockets_opened: int = 0
    sockets_closed: int = 0
    requests: list[str] = field(default_factory=list)  # "METHOD /path" of every API call
    sent: list[str] = field(default_factory=list)  # every text frame the page wrote to the gateway

    @classmethod
    async def open(
        cls,
        browser: Browser,
        base_url: str,
        username: str,
        display_name: str,
        viewport: dict[str, int] = DESKTOP,
        fake_clock: bool = False,
        path: str = "/",
    ) -> ChatPage:
        """A fresh context on the sign-in screen; page errors and console errors are collected.

        With `fake_clock` the page's timers and `Date` are Playwright's, which a test moves forward. `path`
        may carry the page's knobs (`/?idle_after_ms=2000`)."""
        context = await browser.new_context(viewport=ViewportSize(width=viewport["width"], height=viewport["height"]))
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        person = cls(context, page, base_url, username, display_name)
        person._watch()
        if fake_clock:
            await page.clock.install()
        await page.goto(base_url + path)
        await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        return person

    async def another_tab(self) -> ChatPage:
        """A second tab of this person's browser (the same cookies and storage), opened on the start page."""
        tab = ChatPage(self.context, await self.context.new_page(), self.base_url, self.username, self.display_name)
        tab._watch()
        await tab.page.goto(self.base_url + "/")
        return tab

    def _watch(self) -> None:
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("console", self._console)
        self.page.on("websocket", self._socket)
        self.page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        # The browser reports failed requests itself (a 409 answer, a request while offline): not the app's.
        if message.type == "error" and not any(noise in message.text for noise in BROWSER_NETWORK_NOISE):
            self.problems.append(f"console: {message.text}")

    def _socket(self, socket: WebSocket) -> None:
        if "/gateway/ws" not in socket.url:
            return
        self.sockets_opened += 1

        def closed(_: WebSocket) -> None:
            self.sockets_closed += 1

        def sent(payload: str | bytes) -> None:
            if isinstance(payload, str):
                self.sent.append(payload)

        socket.on("close", closed)
        socket.on("framesent", sent)

    def _request(self, request: Request) -> None:
        path = request.url.removeprefix(self.base_url)
        if path.startswith(("/auth/", "/api/", "/gateway/")):
            route = re.sub(r"/[0-9a-f-]{36}(?=/|$)", "/{id}", path.split("?")[0])  # ids as in the route
            self.requests.append(f"{request.method} {route}")

    def count(self, request: str) -> int:
        """How many times the page made this API call ("POST /gateway/passes")."""
        return self.requests.count(request)

    def activity_sent(self) -> list[str]:
        """The states of the `activity` frames the page sent, in order."""
        frames = [json.loads(payload) for payload in self.sent if '"activity"' in payload]
        return [frame["state"] for frame in frames if frame.get("type") == "activity"]

    @property
    def open_sockets(self) -> int:
        return self.sockets_opened - self.sockets_closed

    # --- signing in ---

    async def fill_sign_up(self, username: str, password: str, display_name: str = "") -> None:
        page = self.page
        if await page.get_by_role("button", name="Create an account").is_visible():
            await page.get_by_role("button", name="Create an account").click()
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Display name").fill(display_name)
        await page.get_by_label("Password", exact=True).fill(password)
        await page.get_by_role("button", name="Sign up").click()

    async def sign_up(self) -> None:
        """Create the account and land on the chat screen."""
        await self.fill_sign_up(self.username, PASSWORD, self.display_name)
        await self.expect_chat_screen()

    async def log_in(self, username: str, password: str) -> None:
        await self.page.get_by_label("Username").fill(username)
        await self.page.get_by_label("Password", exact=True).fill(password)
        await self.page.get_by_role("button", name="Log in").click()

    async def expect_chat_screen(self) -> None:
        await expect(self.page.get_by_role("button", name="New chat")).to_be_visible()
        await self.expect_connection("live")

    async def expect_connection(self, status: str, within_ms: float | None = None) -> None:
        await expect(self.page.locator("body")).to_have_attribute("data-connection", status, timeout=within_ms)

    # --- chats ---

    def chat_row(self, title: str) -> Locator:
        return self.page.get_by_role("navigation", name="Chats").get_by_role("link", name=title)

    async def start_direct_chat(self, other: ChatPage) -> None:
        """New chat → search their username → pick them; the conversation opens."""
        await self.page.get_by_role("button", name="New chat").click()
        await self.page.get_by_label("Find someone by username").fill(other.username)
        await self.page.get_by_role("button", name=f"Chat with {other.display_name} (@{other.username})").click()
        await expect(self.conversation_title).to_have_text(other.display_name)

    async def create_group(self, title: str, members: list[ChatPage]) -> None:
        page = self.page
        await page.get_by_role("button", name="New group").click()
        await page.get_by_label("Group name").fill(title)
        for member in members:
            await page.get_by_label("Add members").fill(member.username)
            await page.get_by_role("button", name=f"Add {member.display_name} (@{member.username})").click()
            await expect(page.get_by_role("list", name="Members to add")).to_contain_text(member.display_name)
        await page.get_by_role("button", name="Create group").click()
        await expect(self.conversation_title).to_have_text(title)

    async def open_chat(self, title: str) -> None:
        await self.chat_row(title).click()
        await expect(self.conversation_title).to_have_text(title)

    @property
    def conversation_title(self) -> Locator:
        return self.page.locator("#conversation-title")

    # --- messages ---

    @property
    def composer(self) -> Locator:
        return self.page.get_by_role("textbox", name="Message to", exact=False)

    async def send(self, text: str) -> None:
        """Type and press Enter, as a person does."""
        await self.composer.fill(text)
        await self.composer.press("Enter")

    @property
    def messages(self) -> Locator:
        return self.page.locator(".message-list > li.msg")

    @property
    def bodies(self) -> Locator:
        return self.page.locator(".message-list > li.msg .body")

    def own_message(self, text: str) -> Locator:
        return self.page.locator(".message-list > li.msg.own", has_text=text)

    async def expect_bodies(self, bodies: list[str]) -> None:
        """Exactly these messages, in this order, each once."""
        await expect(self.bodies).to_have_text(bodies)

    # --- presence ---

    @property
    def header_presence(self) -> Locator:
        """The words under the open direct chat's title: "online", "away", "last seen …", "offline"."""
        return self.page.locator(".conversation-subtitle .presence-text")

    def presence_dot(self, title: str) -> Locator:
        """The dot on a chat row's avatar (absent while the other person is offline or unknown)."""
        return self.chat_row(title).locator(".presence-dot")

    @property
    def hide_presence(self) -> Locator:
        return self.page.get_by_role("checkbox", name="Hide my presence")

    async def set_tab_hidden(self, hidden: bool) -> None:
        """Hide or show the tab as the page sees it: headless Chromium keeps every tab visible, so the
        page's `visibilityState` is overridden and `visibilitychange` sent, as the browser would."""
        await self.page.evaluate(
            """(hidden) => {
                const state = hidden ? "hidden" : "visible";
                Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
                Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
                document.dispatchEvent(new Event("visibilitychange"));
            }""",
            hidden,
        )

    # --- the network ---

    async def go_offline(self) -> None:
        """Cut the network. Where Chromium leaves an open WebSocket alone, the page's `offline` event still
        makes the client drop it; if the event never comes, the test sends it, as a flaky network would."""
        await self.context.set_offline(True)
        try:
            await self.expect_connection("offline", within_ms=3_000)
        except AssertionError:
            await self.page.evaluate("window.dispatchEvent(new Event('offline'))")
            await self.expect_connection("offline")

    async def go_online(self) -> None:
        await self.context.set_offline(False)
        try:
            await self.expect_connection("live", within_ms=5_000)
        except AssertionError:
            await self.page.evaluate("window.dispatchEvent(new Event('online'))")
            await self.expect_connection("live")

    # --- artifacts ---

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path

    async def close(self) -> None:
        await self.context.close()
