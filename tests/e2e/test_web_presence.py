"""Presence in the web client, in headless Chromium against a real Parlour (embedded wiring, presence on).

Ada watches Bob: the dot on his avatar in her chat list and the words under his name in her open chat
follow him as he connects, leaves, goes idle, hides his presence (docs/web-client.md, "Presence").
Every wait is on what Ada's page shows, with Playwright's timeout; nothing sleeps.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Route, WebSocketRoute, expect

from parlour.bootstrap import SERVICES
from tests.clients import PASSWORD
from tests.e2e.browser import ChatPage
from tests.harness import make_settings, running_parlour

pytestmark = pytest.mark.browser

IDLE_AFTER_MS = 3_000  # Bob's short idle timeout where a test waits for it (the page's ?idle_after_ms=)


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}")
    async with running_parlour(settings) as url:
        yield url


async def person(people: list[ChatPage], browser: Browser, base_url: str, name: str, path: str = "/") -> ChatPage:
    """A new person, signed up: `name` is their display name, the username is made unique."""
    page = await ChatPage.open(browser, base_url, f"{name.lower()}{uuid.uuid4().hex[:6]}", name, path=path)
    people.append(page)
    await page.sign_up()
    return page


async def come_back(people: list[ChatPage], browser: Browser, base_url: str, gone: ChatPage) -> ChatPage:
    """`gone` logs in again in a fresh browser context."""
    again = await ChatPage.open(browser, base_url, gone.username, gone.display_name)
    people.append(again)
    await again.log_in(gone.username, PASSWORD)
    await again.expect_chat_screen()
    return again


async def ada_watching_bob(
    people: list[ChatPage], browser: Browser, base_url: str, bob_path: str = "/"
) -> tuple[ChatPage, ChatPage]:
    """Ada and Bob signed up, with Ada in their direct chat."""
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob", path=bob_path)
    await ada.start_direct_chat(bob)
    return ada, bob


async def expect_bob(ada: ChatPage, words: str | re.Pattern[str], dot: str | None) -> None:
    """What Ada sees of Bob: the words in the header and at the end of his row's name, and the dot."""
    await expect(ada.header_presence).to_have_text(words)
    pattern = words.pattern if isinstance(words, re.Pattern) else re.escape(words)
    await expect(ada.chat_row("Bob")).to_have_accessible_name(re.compile(rf"\. {pattern}$"))
    if dot is None:
        await expect(ada.presence_dot("Bob")).to_have_count(0)
    else:
        await expect(ada.presence_dot("Bob")).to_have_attribute("data-status", dot)


async def test_the_dot_turns_on_and_off_as_the_other_person_connects_and_leaves_and_last_seen_shows(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob = await ada_watching_bob(people, browser, base_url)
    await expect_bob(ada, "online", dot="online")
    await ada.screenshot("presence-online")

    await bob.close()  # the tab is closed: the socket goes with it
    await expect_bob(ada, "last seen just now", dot=None)
    await ada.screenshot("presence-last-seen")

    bob = await come_back(people, browser, base_url, bob)
    await expect_bob(ada, "online", dot="online")

    await bob.close()
    await expect_bob(ada, "last seen just now", dot=None)


async def test_last_seen_counts_up_as_time_passes(people: list[ChatPage], browser: Browser, base_url: str) -> None:
    ada = await ChatPage.open(browser, base_url, f"ada{uuid.uuid4().hex[:6]}", "Ada", fake_clock=True)
    people.append(ada)
    await ada.sign_up()
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await expect_bob(ada, "online", dot="online")

    await bob.close()
    await expect_bob(ada, "last seen just now", dot=None)
    await ada.page.clock.fast_forward("05:00")  # Ada's clock only; the server's last_seen stays where it was
    await expect_bob(ada, "last seen 5 min ago", dot=None)


async def test_hiding_presence_takes_effect_for_the_other_person_and_is_kept(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob = await ada_watching_bob(people, browser, base_url)
    await expect_bob(ada, "online", dot="online")
    await expect(bob.hide_presence).not_to_be_checked()

    await bob.hide_presence.check()
    await expect_bob(ada, "offline", dot=None)  # no dot, and no "last seen" either
    await bob.page.reload()
    await bob.expect_chat_screen()
    await expect(bob.hide_presence).to_be_checked()  # the server's setting, not the page's memory
    await expect_bob(ada, "offline", dot=None)

    await bob.close()
    await expect_bob(ada, "offline", dot=None)  # hidden, leaving says nothing either
    bob = await come_back(people, browser, base_url, bob)
    await bob.hide_presence.uncheck()
    await expect_bob(ada, "online", dot="online")


async def test_a_setting_the_server_refuses_is_put_back_and_said(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob = await ada_watching_bob(people, browser, base_url)
    await expect_bob(ada, "online", dot="online")

    async def unavailable(route: Route) -> None:
        if route.request.method == "PUT":
            await route.fulfill(status=503, json={"code": "unavailable", "detail": "try again"})
        else:
            await route.fallback()

    await bob.page.route("**/api/presence/settings", unavailable)
    await bob.hide_presence.click()  # not check(): that would insist the box stays checked
    await expect(bob.page.get_by_role("alert").filter(has_text="Could not change the setting")).to_be_visible()
    await expect(bob.hide_presence).not_to_be_checked()
    await expect(bob.hide_presence).to_be_enabled()
    await expect_bob(ada, "online", dot="online")

    await bob.page.unroute("**/api/presence/settings")
    await bob.hide_presence.check()
    await expect(bob.page.get_by_role("alert").filter(has_text="Could not change")).to_have_count(0)
    await expect_bob(ada, "offline", dot=None)


async def test_a_hidden_tab_shows_away_and_online_again_when_shown(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob = await ada_watching_bob(people, browser, base_url)
    await expect_bob(ada, "online", dot="online")

    await bob.set_tab_hidden(True)
    await expect_bob(ada, "away", dot="away")
    await ada.screenshot("presence-away")
    await bob.set_tab_hidden(False)
    await expect_bob(ada, "online", dot="online")
    assert bob.activity_sent() == ["idle", "active"]


async def test_no_input_for_the_idle_timeout_shows_away_and_input_brings_online_back(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob = await ada_watching_bob(people, browser, base_url, bob_path=f"/?idle_after_ms={IDLE_AFTER_MS}")
    await expect_bob(ada, "away", dot="away")  # Bob has not touched his page since signing up
    before = len(bob.activity_sent())
    assert bob.activity_sent()[-1] == "idle"

    for step in range(20):  # a stream of input is one report, not twenty
        await bob.page.mouse.move(100 + step * 5, 200)
    await expect_bob(ada, "online", dot="online")
    await expect_bob(ada, "away", dot="away")  # and quiet again for the timeout
    assert bob.activity_sent()[before:] == ["active", "idle"]


async def test_five_minutes_without_input_is_away_by_default_and_said_again_after_a_reconnect(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await ChatPage.open(browser, base_url, f"bob{uuid.uuid4().hex[:6]}", "Bob", fake_clock=True)
    people.append(bob)
    await bob.sign_up()
    await ada.start_direct_chat(bob)
    await expect_bob(ada, "online", dot="online")
    await bob.page.clock.fast_forward("04:50")  # Bob's clock only
    await expect_bob(ada, "online", dot="online")
    assert bob.activity_sent() == []

    # Five minutes: idle. The jump also outruns Bob's heartbeat, so his socket may be replaced; a new
    # session starts active on the server, and the page says idle again on it.
    await bob.page.clock.fast_forward("00:15")
    await expect_bob(ada, "away", dot="away")
    await bob.expect_connection("live")
    await expect_bob(ada, "away", dot="away")
    assert set(bob.activity_sent()) == {"idle"}


async def test_a_new_contact_whose_frame_never_comes_is_asked_for_over_rest(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")

    def snapshot_only(socket: WebSocketRoute) -> None:
        """Let the gateway's frames through, but of the `presence` frames only the first (the snapshot)."""
        server = socket.connect_to_server()
        heard = [0]

        def keep(frame: dict[str, Any]) -> bool:
            if frame.get("type") != "presence":
                return True
            heard[0] += 1
            return heard[0] == 1

        def forward(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "batch":
                frame["frames"] = [one for one in frame["frames"] if keep(one)]
            elif not keep(frame):
                return
            socket.send(json.dumps(frame))

        server.on_message(forward)

    await ada.page.route_web_socket(re.compile(r"/gateway/ws"), snapshot_only)
    await ada.page.reload()
    await ada.expect_chat_screen()
    await ada.start_direct_chat(bob)
    await expect_bob(ada, "online", dot="online")
    assert ada.count("GET /api/presence") == 1  # the only way Ada could know


async def test_the_words_for_last_seen_and_the_idle_knob(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    page = await ChatPage.open(browser, base_url, "nobody", "Nobody")
    people.append(page)
    said = await page.page.evaluate(
        """async () => {
            const { lastSeenLabel, presenceText } = await import("/static/js/format.js");
            const { idleAfterFrom } = await import("/static/js/activity.js");
            const now = Date.parse("2026-12-02T12:00:00Z");
            const ago = (s) => lastSeenLabel(new Date(now - s * 1000).toISOString(), now);
            return {
                labels: [-30, 0, 59, 60, 300, 3599, 3600, 86399, 86400, 6 * 86400].map(ago),
                texts: [
                    presenceText(null),
                    presenceText({ status: "online", lastSeen: null }),
                    presenceText({ status: "away", lastSeen: null }),
                    presenceText({ status: "offline", lastSeen: null }),
                ],
                knobs: ["?idle_after_ms=1500", "", "?idle_after_ms=0", "?idle_after_ms=1.5", "?idle_after_ms=x"].map(
                    idleAfterFrom,
                ),
            };
        }"""
    )
    assert said["labels"] == [
        "last seen just now",
        "last seen just now",
        "last seen just now",
        "last seen 1 min ago",
        "last seen 5 min ago",
        "last seen 59 min ago",
        "last seen 1 h ago",
        "last seen 23 h ago",
        "last seen 1 day ago",
        "last seen 6 days ago",
    ]
    assert said["texts"] == ["", "online", "away", "offline"]
    assert said["knobs"] == [1500, 300_000, 300_000, 300_000, 300_000]


async def test_without_the_presence_service_the_page_shows_no_presence_and_asks_for_none(
    people: list[ChatPage], browser: Browser, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'without.db'}")
    async with running_parlour(settings, [name for name in SERVICES if name != "presence"]) as url:
        ada = await person(people, browser, url, "Ada")
        bob = await person(people, browser, url, "Bob")
        await ada.start_direct_chat(bob)
        await bob.set_tab_hidden(True)
        await ada.send("still here?")
        await bob.set_tab_hidden(False)
        await bob.open_chat("Ada")
        await bob.expect_bodies(["still here?"])  # activity frames go nowhere, and harm nothing

        assert bob.activity_sent() == ["idle", "active"]
        await bob.expect_connection("live")
        assert bob.sockets_opened == 1
        await expect(ada.header_presence).to_have_count(0)
        await expect(ada.presence_dot("Bob")).to_have_count(0)
        await expect(ada.page.get_by_text("Hide my presence")).to_be_hidden()  # its GET was refused
        assert ada.count("GET /api/presence/settings") == 1
        assert ada.count("GET /api/presence") == 0  # no frame came, so nothing is asked
        for page in (ada, bob):
            await page.close()


async def test_the_member_list_shows_each_members_presence_as_it_changes(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    cy = await person(people, browser, base_url, "Cy")
    await ada.create_group("Walkers", [bob, cy])
    await ada.page.get_by_role("button", name="3 members").click()
    members = ada.page.get_by_role("dialog", name="Members")
    row = {name: members.get_by_role("listitem").filter(has_text=name) for name in ("Ada (you)", "Bob", "Cy")}
    for name in ("Bob", "Cy"):
        await expect(row[name].locator(".member-presence")).to_have_text("online")
        await expect(row[name].locator(".presence-dot")).to_have_attribute("data-status", "online")
    await expect(row["Ada (you)"].locator(".member-presence")).to_have_count(0)

    await bob.close()
    people.remove(bob)
    await expect(row["Bob"].locator(".member-presence")).to_have_text("last seen just now")
    await expect(row["Bob"].locator(".presence-dot")).to_have_count(0)
    await expect(row["Cy"].locator(".member-presence")).to_have_text("online")
