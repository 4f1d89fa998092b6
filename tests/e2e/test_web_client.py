"""The web client in headless Chromium against a real Parlour (embedded wiring, real HTTP and WebSocket).

Each test is one feature as a person meets it. Screenshots of the main screens go to test-artifacts/web/;
with PARLOUR_UPDATE_SCREENSHOT=1 the overview (chat list and a conversation) also refreshes docs/screenshot.png.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, FilePayload, Locator, WebSocketRoute, expect

from tests.clients import PASSWORD, log_in
from tests.e2e.browser import DESKTOP, PHONE, README_SCREENSHOT, ChatPage, eventually
from tests.harness import make_settings, running_parlour

pytestmark = pytest.mark.browser


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}")
    async with running_parlour(settings) as url:
        yield url


async def person(
    people: list[ChatPage], browser: Browser, base_url: str, name: str, viewport: dict[str, int] | None = None
) -> ChatPage:
    """A new person, signed up: `name` is their display name, the username is made unique."""
    username = f"{name.lower()}{uuid.uuid4().hex[:6]}"
    page = await ChatPage.open(browser, base_url, username, name, viewport=viewport or DESKTOP)
    people.append(page)
    await page.sign_up()
    return page


async def ada_writes_to_bob(
    people: list[ChatPage], browser: Browser, base_url: str, first: str, bob_viewport: dict[str, int] = DESKTOP
) -> tuple[ChatPage, ChatPage]:
    """Ada and Bob signed up, and Ada's first message in their direct chat on Bob's list."""
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob", viewport=bob_viewport)
    await ada.start_direct_chat(bob)
    await ada.send(first)
    await expect(bob.chat_row("Ada")).to_be_visible()
    return ada, bob


async def release_passes_and_retry_now(person: ChatPage) -> None:
    """Let pass requests through again and press "Retry now" while the next automatic attempt is still
    seconds away, so it is the click that reconnects (released earlier, a backoff timer may win the race
    and take the button away before the click)."""
    await expect(person.page.get_by_role("status")).to_contain_text(
        re.compile(r"Reconnecting in ([4-9]|\d\d) s"), timeout=20_000
    )
    await person.page.unroute("**/gateway/passes")
    await person.page.get_by_role("button", name="Retry now").click()


async def test_two_people_sign_up_find_each_other_and_chat_both_ways_live(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    await ada.screenshot("chat-list-empty")
    bob = await person(people, browser, base_url, "Bob", viewport=PHONE)

    await ada.page.get_by_role("button", name="New chat").click()
    await ada.page.get_by_label("Find someone by username").fill(bob.username[:4])
    await expect(ada.page.get_by_role("button", name=f"Chat with Bob (@{bob.username})")).to_be_visible()
    await ada.screenshot("new-chat-dialog")
    await ada.page.keyboard.press("Escape")
    await ada.start_direct_chat(bob)
    await ada.send("Hello Bob! Tea at five?")

    await expect(bob.chat_row("Ada, 1 unread")).to_be_visible()
    await expect(bob.chat_row("Ada, 1 unread")).to_contain_text("Hello Bob! Tea at five?")
    await bob.screenshot("phone-chat-list")
    await bob.open_chat("Ada")
    await bob.expect_bodies(["Hello Bob! Tea at five?"])
    await bob.composer.fill("Yes")
    await expect(ada.page.get_by_text("Bob is typing…")).to_be_visible()
    await bob.composer.press("Shift+Enter")
    await bob.composer.type("see you there")
    await bob.composer.press("Enter")

    both = ["Hello Bob! Tea at five?", "Yes\nsee you there"]
    await ada.expect_bodies(both)
    await bob.expect_bodies(both)
    await expect(ada.page.locator(".message-list li.msg.theirs")).to_have_count(1)
    await expect(bob.page.locator(".message-list li.msg.own")).to_have_count(1)
    await expect(ada.page.get_by_text("Bob is typing…")).to_be_hidden()
    await bob.screenshot("phone-conversation")
    await ada.send("Perfect. I'll bring scones.")
    await expect(ada.own_message("scones")).to_have_attribute("data-state", "read")
    await ada.screenshot("conversation")


async def test_a_group_of_three_chat_together_and_everyone_sees_the_same_order(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    cy = await person(people, browser, base_url, "Cy")

    await ada.create_group("Book club", [bob, cy])
    await ada.send("Welcome to the book club")
    for member in (bob, cy):
        await expect(member.chat_row("Book club, 1 unread")).to_be_visible()
        await member.open_chat("Book club")
    await bob.send("Thanks Ada")
    await cy.send("Hi both")
    await ada.send("First book: Middlemarch")

    conversation = ["Welcome to the book club", "Thanks Ada", "Hi both", "First book: Middlemarch"]
    for member in (ada, bob, cy):
        await member.expect_bodies(conversation)
    await expect(cy.page.locator(".message-list li.msg.theirs .sender")).to_have_text(["Ada", "Bob", "Ada"])
    await expect(ada.page.locator(".conversation-subtitle")).to_have_text("3 members")
    await cy.screenshot("group-conversation")


async def test_the_chat_list_shows_the_most_recent_activity_first_with_unread_badges(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    cy = await person(people, browser, base_url, "Cy")
    await bob.start_direct_chat(ada)
    await bob.send("one from Bob")
    await cy.start_direct_chat(ada)
    await cy.send("one from Cy")
    await cy.send("two from Cy")

    rows = ada.page.get_by_role("navigation", name="Chats").get_by_role("link")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_have_accessible_name(re.compile(r"^Cy, 2 unread\. two from Cy"))
    await expect(rows.last).to_have_accessible_name(re.compile(r"^Bob, 1 unread\. one from Bob"))
    await expect(rows.first.locator(".badge")).to_have_text("2")
    await bob.send("Bob again")
    await expect(rows.first).to_have_accessible_name(re.compile(r"^Bob, 2 unread\. Bob again"))
    await ada.screenshot("chat-list")

    await ada.open_chat("Bob")
    await expect(rows.first.locator(".badge")).to_have_count(0)
    await expect(rows.last.locator(".badge")).to_have_text("2")
    await ada.send("Back from the library. Tea at five?")
    await bob.open_chat("Ada")
    await expect(ada.own_message("Tea at five?")).to_have_attribute("data-state", "read")
    shot = await ada.screenshot("overview")
    if os.environ.get("PARLOUR_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, README_SCREENSHOT)


async def test_the_chat_screen_works_from_the_keyboard_alone(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    keys = ada.page.keyboard

    await ada.page.get_by_role("button", name="New chat").focus()
    await keys.press("Enter")
    await expect(ada.page.get_by_label("Find someone by username")).to_be_focused()
    await keys.type(bob.username)
    await expect(ada.page.get_by_role("button", name=f"Chat with Bob (@{bob.username})")).to_be_visible()
    await keys.press("Enter")  # the first person found
    await expect(ada.composer).to_be_focused()
    await keys.type("typed, never clicked")
    await keys.press("Enter")
    await bob.open_chat("Ada")
    await bob.expect_bodies(["typed, never clicked"])

    await ada.page.get_by_role("button", name="New group").focus()
    await keys.press("Enter")
    await expect(ada.page.get_by_label("Group name")).to_be_focused()
    await keys.press("Escape")
    await expect(ada.page.get_by_role("dialog")).to_have_count(0)
    await expect(ada.page.get_by_role("button", name="New group")).to_be_focused()


async def test_the_composer_shows_the_length_limit_and_refuses_longer_messages(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    count = ada.page.locator("#composer-count")
    await expect(count).to_have_text("0 / 4,000")
    await ada.composer.fill("é" * 4000)
    await expect(count).to_have_text("4,000 / 4,000")
    await expect(ada.page.get_by_role("button", name="Send")).to_be_enabled()
    await ada.composer.fill("😀" * 4001)  # characters, not UTF-16 units: the server counts the same way
    await expect(count).to_have_text("4,001 / 4,000")
    await expect(ada.composer).to_have_attribute("aria-invalid", "true")
    await expect(ada.page.get_by_role("button", name="Send")).to_be_disabled()
    await ada.composer.press("Enter")
    await expect(ada.messages).to_have_count(0)
    await ada.composer.fill("😀" * 4000)
    await ada.composer.press("Enter")
    await bob.open_chat("Ada")
    await bob.expect_bodies(["😀" * 4000])


async def test_a_reader_offline_while_ten_messages_are_sent_gets_exactly_those_ten_in_order(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("before")
    await bob.open_chat("Ada")
    await bob.expect_bodies(["before"])
    assert bob.sockets_opened == 1

    await bob.go_offline()
    await expect(bob.page.get_by_role("status").filter(has_text="You are offline")).to_be_visible()
    await bob.screenshot("offline-banner")
    sent = [f"missed {n}" for n in range(1, 11)]
    for text in sent:
        await ada.send(text)
    await expect(ada.page.locator(".message-list li.msg.own[data-state=sent]")).to_have_count(10)
    await bob.expect_bodies(["before"])  # nothing came through while offline

    await bob.go_online()
    await bob.expect_bodies(["before", *sent])
    await expect(bob.messages).to_have_count(11)
    await ada.send("live again")
    await bob.expect_bodies(["before", *sent, "live again"])
    assert bob.sockets_opened == 2
    assert bob.open_sockets == 1  # the offline socket was closed, and only one replaced it
    assert bob.count("POST /gateway/passes") == 2  # a new pass for every connect


async def test_a_gateway_restart_is_survived_with_a_new_pass_and_nothing_missed(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("before the restart")
    await bob.open_chat("Ada")
    await bob.expect_bodies(["before the restart"])
    proxied: list[WebSocketRoute] = []

    def through(socket: WebSocketRoute) -> None:
        socket.connect_to_server()
        proxied.append(socket)

    await bob.page.route_web_socket(re.compile(r"/gateway/ws"), through)
    await bob.page.reload()  # still signed in; the new socket passes through the test, which can close it
    await bob.expect_chat_screen()
    await bob.open_chat("Ada")
    assert len(proxied) == 1

    await bob.page.route("**/gateway/passes", lambda route: route.abort())  # the gateway is restarting
    await proxied[0].close(code=1012, reason="service restart")
    await bob.expect_connection("waiting")
    await expect(bob.page.get_by_role("status")).to_contain_text("Connection lost.")
    await bob.screenshot("reconnecting-banner")
    during = ["sent during the restart 1", "sent during the restart 2"]
    for text in during:
        await ada.send(text)
    await release_passes_and_retry_now(bob)

    await bob.expect_connection("live")
    await bob.expect_bodies(["before the restart", *during])
    assert len(proxied) == 2  # the restarted socket, then exactly one replacement
    assert bob.count("POST /gateway/passes") >= 3  # one per attempt: sign-in, reload, after the restart


async def test_a_reader_who_missed_more_than_one_resume_answer_carries_still_gets_everything_in_order(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("message 0")
    await bob.open_chat("Ada")
    await bob.expect_bodies(["message 0"])

    await bob.go_offline()
    # A resume answer carries at most 500 messages per chat; ten senders at once make the seq order.
    history = await _post_as(base_url, ada.username, [f"message {n}" for n in range(1, 531)], at_once=10)
    await bob.go_online()
    await bob.expect_bodies(history)
    assert bob.count("GET /api/chats/{id}/messages") >= 1  # the rest was paged in after the answer


async def _post_as(base_url: str, username: str, bodies: list[str], at_once: int = 1) -> list[str]:
    """Send messages over REST as `username` to their first chat, `at_once` at a time; the chat's whole
    history afterwards, in seq order."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        headers = {"Authorization": f"Bearer {(await log_in(http, username))['access_token']}"}
        chat = f"/api/chats/{(await http.get('/api/chats', headers=headers)).json()['items'][0]['id']}"
        slots = asyncio.Semaphore(at_once)

        async def post(body: str) -> None:
            async with slots:
                response = await http.post(f"{chat}/messages", json={"body": body}, headers=headers)
                assert response.status_code == 201, response.text

        await asyncio.gather(*(post(body) for body in bodies))
        history: list[str] = []
        while True:
            page = (
                await http.get(f"{chat}/messages", params={"after_seq": len(history), "limit": 200}, headers=headers)
            ).json()
            history += [message["body"] for message in page["items"]]
            if not page["has_more"]:
                return history


async def test_a_message_written_offline_is_sent_once_when_back(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("are you there?")
    await bob.open_chat("Ada")

    await bob.go_offline()
    await bob.send("written on the train")
    pending = bob.page.locator(".message-list li.msg.pending")
    await expect(pending).to_have_attribute("data-state", "queued")
    await expect(pending).to_contain_text("Waiting for the connection")
    await bob.screenshot("offline-queued-message")

    await bob.go_online()
    await expect(bob.own_message("written on the train")).to_have_attribute("data-state", "read")
    await ada.expect_bodies(["are you there?", "written on the train"])
    await bob.expect_bodies(["are you there?", "written on the train"])

    # Sent, then the network goes at once: whether or not the ack came back, it is delivered exactly once.
    await bob.send("sent as the tunnel starts")
    await bob.go_offline()
    await bob.go_online()
    everything = ["are you there?", "written on the train", "sent as the tunnel starts"]
    await bob.expect_bodies(everything)
    await ada.expect_bodies(everything)
    await expect(bob.page.locator(".message-list li.msg.pending")).to_have_count(0)


async def test_a_queued_message_outlives_a_reload_and_is_sent_once_when_the_gateway_is_back(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("ping")
    await bob.open_chat("Ada")

    await bob.go_offline()
    await bob.send("queued before the reload")
    await bob.page.route("**/gateway/passes", lambda route: route.abort())  # the gateway stays out of reach
    await bob.context.set_offline(False)
    await bob.expect_connection("waiting")
    await bob.page.reload()
    await bob.expect_connection("waiting")
    await bob.open_chat("Ada")
    await expect(bob.page.locator(".message-list li.msg.pending")).to_contain_text("queued before the reload")

    await release_passes_and_retry_now(bob)
    await bob.expect_connection("live")
    await ada.expect_bodies(["ping", "queued before the reload"])
    await bob.expect_bodies(["ping", "queued before the reload"])


async def test_read_state_appears_on_the_senders_message_when_the_other_reads(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("did you read this?")

    message = ada.own_message("did you read this?")
    await expect(message).to_have_attribute("data-state", "sent")
    await expect(message.locator(".state")).to_have_text("✓Sent")
    await expect(bob.chat_row("Ada, 1 unread")).to_be_visible()
    await expect(message).to_have_attribute("data-state", "sent")  # delivered to Bob's screen is not read

    await bob.open_chat("Ada")
    await expect(message).to_have_attribute("data-state", "read")
    await expect(message.locator(".state")).to_have_text("✓✓Read")
    await expect(bob.chat_row("Ada").locator(".badge")).to_have_count(0)


async def test_edits_and_deletions_show_on_both_sides(people: list[ChatPage], browser: Browser, base_url: str) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("teh first draft")
    await ada.send("a regrettable message")
    await bob.open_chat("Ada")
    await bob.expect_bodies(["teh first draft", "a regrettable message"])

    draft = ada.own_message("teh first draft")
    await draft.hover()
    await draft.get_by_role("button", name="Edit message").click()
    editor = ada.page.get_by_role("textbox", name="Edit message")
    await editor.fill("the first draft")
    await editor.press("Enter")
    await bob.expect_bodies(["the first draft", "a regrettable message"])
    await expect(bob.messages.first.locator(".edited")).to_have_text("edited")

    regret = ada.own_message("a regrettable message")
    await regret.hover()
    await regret.get_by_role("button", name="Delete message").click()
    await ada.page.get_by_role("button", name="Delete for everyone").click()
    await bob.expect_bodies(["the first draft", "Message deleted"])
    await ada.expect_bodies(["the first draft", "Message deleted"])


async def test_history_loads_upward_on_scroll_to_the_beginning(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("message 1")
    history = await _post_as(base_url, ada.username, [f"message {n}" for n in range(2, 121)], at_once=10)

    await bob.page.reload()  # a fresh start: history comes from the server a page at a time
    await bob.expect_chat_screen()
    await bob.open_chat("Ada")
    await expect(bob.bodies.last).to_have_text(history[-1])
    await expect(bob.messages).to_have_count(50)  # the newest page, scrolled to the bottom
    await expect(bob.page.get_by_text("This is the beginning of the chat.")).to_be_hidden()
    scroller = bob.page.get_by_role("log", name="Messages")
    for loaded in (100, 120):  # each scroll to the top brings the page before, and one page only
        await scroller.evaluate("el => el.scrollTo(0, 0)")
        await expect(bob.messages).to_have_count(loaded)
        if loaded == 100:  # the reader stays where they were, so the next page waits for the next scroll
            await expect(bob.page.get_by_text("Loading earlier messages…")).to_be_hidden()
            assert await scroller.evaluate("el => el.scrollTop") > 150
            await expect(bob.messages).to_have_count(100)
    await expect(bob.page.get_by_text("This is the beginning of the chat.")).to_be_visible()
    assert len(history) == 120
    await bob.expect_bodies(history)
    await expect(bob.page.get_by_role("separator", name="Today")).to_have_count(1)


async def refresh_cookie(person: ChatPage) -> str:
    """The browser's refresh cookie (Playwright sees HttpOnly cookies; the page does not)."""
    (cookie,) = [c for c in await person.context.cookies() if c.get("name") == "parlour_refresh"]
    assert cookie.get("httpOnly") is True
    assert cookie.get("sameSite") == "Strict"
    assert cookie.get("path") == "/auth/sessions"
    return str(cookie.get("value"))


async def test_a_second_tab_is_signed_in_already_and_no_script_can_read_the_refresh_token(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("one login, two tabs")

    tab = await ada.another_tab()
    people.append(tab)
    await tab.expect_chat_screen()
    await tab.open_chat("Bob")
    await tab.expect_bodies(["one login, two tabs"])
    await tab.send("from the second tab")
    await ada.expect_bodies(["one login, two tabs", "from the second tab"])
    assert tab.count("POST /auth/sessions") == 0, "no second login"
    await refresh_cookie(ada)
    stored = await tab.page.evaluate(
        "() => [document.cookie, JSON.stringify(sessionStorage), JSON.stringify(localStorage)].join(' ')"
    )
    assert "parlour_refresh" not in stored
    assert await refresh_cookie(ada) not in stored

    # Logging out in one tab ends the other: the session is over for the browser.
    await tab.page.get_by_role("button", name="Log out").click()
    await expect(tab.page.get_by_role("heading", name="Log in")).to_be_visible()
    await expect(ada.page.get_by_text("Your session has ended. Please log in again.")).to_be_visible()
    await ada.page.reload()
    await expect(ada.page.get_by_role("heading", name="Log in")).to_be_visible()


async def test_a_tab_whose_browser_logs_in_as_someone_else_starts_again_as_them(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    bob = await person(people, browser, base_url, "Bob")
    ada = await ChatPage.open(browser, base_url, f"ada{uuid.uuid4().hex[:6]}", "Ada", fake_clock=True)
    people.append(ada)
    tab = await ada.another_tab()  # on the log-in form: nobody is signed in yet
    people.append(tab)
    await ada.sign_up()
    # The other tab, still on its form, logs in as Bob: the browser's one refresh cookie is now Bob's.
    await tab.log_in(bob.username, PASSWORD)
    await tab.expect_chat_screen()
    await expect(ada.page.locator(".me-name")).to_have_text(f"Ada (@{ada.username})")

    await ada.page.clock.fast_forward("12:00")  # Ada's tab refreshes, and gets Bob's tokens
    await expect(ada.page.locator(".me-name")).to_have_text(f"Bob (@{bob.username})")
    await ada.expect_connection("live")


async def test_i_see_where_i_am_signed_in_end_another_session_and_change_my_password(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    phone = await ChatPage.open(browser, base_url, ada.username, "Ada", viewport=PHONE)
    people.append(phone)
    await phone.log_in(ada.username, PASSWORD)
    await phone.expect_chat_screen()

    await ada.page.get_by_role("button", name="Sessions and password").click()
    dialog = ada.page.get_by_role("dialog", name="Sessions and password")
    sessions = dialog.get_by_role("list", name="Your sessions").get_by_role("listitem")
    await expect(sessions).to_have_count(2)
    await expect(sessions.filter(has_text="(this device)")).to_have_count(1)
    await expect(sessions.first).to_contain_text("Chrome on Linux")
    await dialog.get_by_role("button", name="End the session on Chrome on Linux").click()
    await expect(sessions).to_have_count(1)
    await expect(phone.page.get_by_text("Your session has ended. Please log in again.")).to_be_visible()

    await dialog.get_by_label("Current password").fill("not-my-password")
    await dialog.get_by_label("New password").fill("a-better-password")
    await dialog.get_by_role("button", name="Change password").click()
    await expect(dialog.get_by_text("The password is wrong.")).to_be_visible()
    await expect(dialog.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    await dialog.get_by_label("Current password").fill(PASSWORD)
    await dialog.get_by_label("New password").fill("short")
    await dialog.get_by_role("button", name="Change password").click()
    await expect(dialog.get_by_label("New password")).to_have_attribute("aria-invalid", "true")
    await dialog.get_by_label("New password").fill("a-better-password")
    await dialog.get_by_role("button", name="Change password").click()
    await expect(dialog.get_by_text("Password changed. Your other sessions have ended.")).to_be_visible()
    await dialog.get_by_role("button", name="Close").click()

    await phone.log_in(ada.username, PASSWORD)
    await expect(phone.page.get_by_text("Unknown username or wrong password.")).to_be_visible()
    await phone.log_in(ada.username, "a-better-password")
    await phone.expect_chat_screen()


async def test_i_delete_my_account_and_the_others_see_my_messages_from_deleted_user(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob = await ada_writes_to_bob(people, browser, base_url, "so long")

    await ada.page.get_by_role("button", name="Sessions and password").click()
    dialog = ada.page.get_by_role("dialog", name="Sessions and password")
    await dialog.get_by_label("Your password, to confirm").fill("not-my-password")
    await dialog.get_by_role("button", name="Delete my account").click()
    await expect(dialog.get_by_label("Your password, to confirm")).to_have_attribute("aria-invalid", "true")
    await dialog.get_by_label("Your password, to confirm").fill(PASSWORD)
    await dialog.get_by_role("button", name="Delete my account").click()
    await expect(ada.page.get_by_text("Your account has been deleted.")).to_be_visible()
    await expect(ada.page.get_by_role("heading", name="Log in")).to_be_visible()
    await ada.page.reload()
    await expect(ada.page.get_by_role("heading", name="Log in")).to_be_visible()

    await bob.page.reload()
    await bob.open_chat("Deleted user")
    await bob.expect_bodies(["so long"])


async def test_the_access_token_is_refreshed_before_it_expires_and_chat_goes_on(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await ChatPage.open(browser, base_url, f"bob{uuid.uuid4().hex[:6]}", "Bob", fake_clock=True)
    people.append(bob)
    await bob.sign_up()
    stored = await refresh_cookie(bob)
    assert bob.count("POST /auth/sessions/refresh") == 0

    await bob.page.clock.fast_forward("12:00")  # access tokens live 15 minutes; refresh comes at 75 %
    await eventually(lambda: bob.count("POST /auth/sessions/refresh") == 1)

    async def rotated() -> bool:
        return await refresh_cookie(bob) != stored

    await eventually(rotated)

    await bob.page.clock.fast_forward("05:00")  # past the first token's expiry
    await ada.start_direct_chat(bob)
    await ada.send("still there?")
    await bob.open_chat("Ada")
    await bob.send("yes")
    await ada.expect_bodies(["still there?", "yes"])
    assert bob.count("POST /auth/sessions/refresh") == 1  # the second token is still fresh: no refresh storm


async def test_sign_up_and_log_in_show_their_errors_next_to_the_field(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    await ada.page.get_by_role("button", name="Log out").click()
    await expect(ada.page.get_by_role("heading", name="Log in")).to_be_visible()
    await ada.screenshot("log-in")

    await ada.fill_sign_up(ada.username, "correct horse battery", "Another Ada")
    await expect(ada.page.locator("#auth-username-error")).to_contain_text("taken")
    await expect(ada.page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
    await ada.fill_sign_up("fresh" + ada.username, "short")
    await expect(ada.page.locator("#auth-password-error")).not_to_be_empty()
    await ada.screenshot("sign-up-errors")

    await ada.page.get_by_role("button", name="Log in").last.click()
    await ada.log_in(ada.username, "not the password")
    await expect(ada.page.get_by_role("alert")).to_contain_text("password")
    await ada.log_in(ada.username, "correct horse battery")
    await ada.expect_chat_screen()


async def test_backoff_grows_exponentially_with_jitter_and_is_capped(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await ChatPage.open(browser, base_url, "nobody", "Nobody")
    people.append(ada)
    delays = await ada.page.evaluate(
        """async () => {
            const { backoffDelay, closeAction } = await import("/static/js/connection.js");
            const low = [0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, () => 0));
            const high = [0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, () => 0.999999));
            const actions = [1006, 1012, 4000, 4001, 4401, 4403, 4008, 4029].map(closeAction);
            return { low, high, actions };
        }"""
    )
    assert delays["low"] == [250, 500, 1000, 2000, 4000, 15000]
    assert delays["high"] == [500, 1000, 2000, 4000, 8000, 30000]
    assert delays["actions"] == ["retry", "retry", "now", "now", "retry", "stop", "stop", "retry"]


async def test_a_link_to_a_chat_one_is_not_in_says_so_after_one_request_and_hides_the_chat_before(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    cy = await person(people, browser, base_url, "Cy", viewport=PHONE)
    await ada.start_direct_chat(bob)
    await ada.send("Just between us")
    link = "#" + ada.page.url.split("#", 1)[1]
    chat_id = link.rsplit("/", 1)[1]
    asked: list[str] = []
    cy.page.on("request", lambda request: asked.append(request.url) if chat_id in request.url else None)
    await cy.start_direct_chat(ada)
    await cy.send("Hello Ada")

    notice = cy.page.get_by_role("region", name="Chat not available")
    for _ in range(2):  # from inside a chat, then again from the list: the answer is remembered
        await cy.page.evaluate("(hash) => { location.hash = hash; }", link)
        await expect(notice).to_contain_text("you are not a member of it")
        await expect(cy.conversation_title).to_be_hidden()
        await expect(cy.page).to_have_title("Chat not available — Parlour")
        await notice.get_by_role("link", name="Back to chats").click()
        await expect(notice).to_be_hidden()
        await expect(cy.chat_row("Ada")).to_be_visible()
    assert asked == [f"{base_url}/api/chats/{chat_id}"]


async def test_a_hidden_tab_counts_the_open_chats_new_messages_in_its_title(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    await ada.send("Tea?")
    await bob.open_chat("Ada")
    await expect(ada.own_message("Tea?")).to_have_attribute("data-state", "read")
    await expect(bob.page).to_have_title("Ada — Parlour")

    await bob.set_tab_hidden(True)
    await ada.send("At five")
    await ada.send("In the garden")
    await expect(bob.page).to_have_title("(2) Ada — Parlour")
    await bob.set_tab_hidden(False)
    await expect(bob.page).to_have_title("Ada — Parlour")
    await expect(ada.own_message("In the garden")).to_have_attribute("data-state", "read")


async def test_send_is_disabled_until_there_is_something_to_send(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    send = ada.page.get_by_role("button", name="Send")
    await expect(send).to_be_disabled()
    await ada.composer.fill("  \n  ")
    await expect(send).to_be_disabled()
    await ada.composer.fill("Hello")
    await expect(send).to_be_enabled()
    await send.click()
    await ada.expect_bodies(["Hello"])
    await expect(send).to_be_disabled()


async def test_http_and_https_addresses_are_links_that_tell_the_other_site_nothing(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob")
    await ada.start_direct_chat(bob)
    body = "Menu: https://example.com/tea_(meal)?q=1, or javascript:alert(1), ftp://files.example and www.x.org."
    await ada.send(body)
    await bob.open_chat("Ada")
    await bob.expect_bodies([body])
    for page in (ada, bob):
        links = page.messages.last.get_by_role("link")
        await expect(links).to_have_count(1)
        await expect(links).to_have_text("https://example.com/tea_(meal)?q=1")
        await expect(links).to_have_attribute("href", "https://example.com/tea_(meal)?q=1")
        await expect(links).to_have_attribute("rel", "noopener noreferrer")
        await expect(links).to_have_attribute("target", "_blank")


async def test_a_group_is_managed_from_its_member_list_as_each_role_allows(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob, cy = [await person(people, browser, base_url, name) for name in ("Ada", "Bob", "Cy")]
    dee = await person(people, browser, base_url, "Dee", viewport=PHONE)
    await ada.create_group("Book club", [bob, cy])
    await ada.send("Welcome")
    await bob.open_chat("Book club")
    await cy.open_chat("Book club")

    # Ada, the owner, sees everyone (owners first), adds Dee and makes Bob an admin.
    await ada.page.get_by_role("button", name="3 members").click()
    members = ada.page.get_by_role("dialog", name="Members")
    await expect(members.get_by_role("listitem")).to_have_count(3)
    await expect(members.get_by_role("listitem").first).to_contain_text("Ada (you)")
    await members.get_by_label("Add someone").fill(dee.username)
    await members.get_by_role("button", name=f"Add Dee (@{dee.username})").click()
    await expect(members.get_by_role("listitem")).to_have_count(4)
    await expect(dee.chat_row("Book club")).to_be_visible()
    await members.get_by_label("Role of Bob").select_option("admin")
    await expect(members.get_by_label("Role of Bob")).to_have_value("admin")
    await ada.page.keyboard.press("Escape")

    # Bob, an admin: renames, removes Cy (a member), but changes no role and cannot remove the owner.
    await bob.page.get_by_role("button", name="4 members").click()
    bobs = bob.page.get_by_role("dialog", name="Members")
    await expect(bobs.get_by_role("listitem").filter(has_text="Ada")).to_contain_text("Owner")
    await expect(bobs.get_by_role("combobox")).to_have_count(0)
    await expect(bobs.get_by_role("button", name="Remove Ada")).to_have_count(0)
    await bobs.get_by_label("New name for the group").fill("Reading club")
    await bobs.get_by_role("button", name="Rename").click()
    await expect(ada.conversation_title).to_have_text("Reading club")
    await bobs.get_by_role("button", name="Remove Cy").click()
    await expect(bobs.get_by_role("listitem")).to_have_count(3)
    await expect(cy.chat_row("Reading club")).to_have_count(0)
    await expect(cy.chat_row("Book club")).to_have_count(0)
    removed = cy.page.get_by_role("region", name="Chat not available")
    await expect(removed).to_contain_text("You are no longer a member of “Reading club”.")
    await expect(cy.conversation_title).to_be_hidden()
    await expect(ada.page.get_by_role("button", name="3 members")).to_be_visible()

    # Dee, a plain member, manages nothing and leaves; the last owner may not.
    await dee.open_chat("Reading club")
    await dee.page.get_by_role("button", name="3 members").click()
    dees = dee.page.get_by_role("dialog", name="Members")
    await expect(dees.get_by_role("listitem")).to_have_count(3)
    await expect(dees.get_by_label("New name for the group")).to_be_hidden()
    await expect(dees.get_by_label("Add someone")).to_be_hidden()
    await expect(dees.get_by_role("button", name=re.compile("^Remove "))).to_have_count(0)
    await dees.get_by_role("button", name="Leave group").click()
    await expect(dee.chat_row("Reading club")).to_have_count(0)
    await expect(dee.page.get_by_role("region", name="Chat not available")).to_have_count(0)
    await expect(dee.page.get_by_text("no longer a member")).to_have_count(0)
    await expect(ada.page.get_by_role("button", name="2 members")).to_be_visible()
    await ada.page.get_by_role("button", name="2 members").click()
    await members.get_by_role("button", name="Leave group").click()
    await expect(members.get_by_role("alert")).to_contain_text("last owner")
    await ada.screenshot("group-members")

    # Bob, looking at his chat list, is removed: a line above the list says so.
    await bob.page.keyboard.press("Escape")
    await bob.page.evaluate("() => { location.hash = '#/'; }")
    await expect(bob.conversation_title).to_be_hidden()
    await members.get_by_role("button", name="Remove Bob").click()
    await expect(bob.chat_row("Reading club")).to_have_count(0)
    notice = bob.page.get_by_role("status").filter(has_text="You are no longer a member of “Reading club”.")
    await expect(notice).to_be_visible()
    await notice.get_by_role("button", name="Dismiss").click()
    await expect(notice).to_be_hidden()


async def test_i_change_my_display_name_and_the_other_person_sees_it_after_a_reload(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob = await ada_writes_to_bob(people, browser, base_url, "Hello", bob_viewport=PHONE)

    await ada.page.get_by_role("button", name="Name and picture").click()
    profile = ada.page.get_by_role("dialog", name="Your profile")
    await expect(profile.get_by_label("Your name")).to_have_value("Ada")
    await profile.get_by_label("Your name").fill("   ")
    await profile.get_by_role("button", name="Save").click()
    await expect(profile.get_by_text("Display names are 1 to 64 printable characters.")).to_be_visible()
    await expect(profile.get_by_label("Your name")).to_have_attribute("aria-invalid", "true")
    await profile.get_by_label("Your name").fill("Ada Lovelace")
    await profile.get_by_role("button", name="Save").click()
    await expect(profile).to_be_hidden()
    await expect(ada.page.locator(".me-name")).to_have_text(f"Ada Lovelace (@{ada.username})")

    await bob.page.reload()
    await expect(bob.chat_row("Ada Lovelace")).to_be_visible()
    await bob.open_chat("Ada Lovelace")


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


async def test_my_picture_shows_for_others_and_a_file_that_is_not_one_is_refused_next_to_the_field(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob = await ada_writes_to_bob(people, browser, base_url, "see my picture", bob_viewport=PHONE)

    await ada.page.get_by_role("button", name="Name and picture").click()
    profile = ada.page.get_by_role("dialog", name="Your profile")
    chooser = profile.get_by_label("Your picture (PNG, JPEG or WebP, at most 2 MB)")
    await chooser.set_input_files(files=FilePayload(name="notes.png", mimeType="image/png", buffer=b"not a png"))
    await expect(profile.get_by_text("A picture is a PNG, JPEG or WebP image of at most 2 MB.")).to_be_visible()
    await expect(chooser).to_have_attribute("aria-invalid", "true")
    await chooser.set_input_files(files=FilePayload(name="me.png", mimeType="image/png", buffer=small_png()))
    await expect(profile.locator(".profile-picture img.avatar-picture")).to_have_count(1)
    await expect(chooser).not_to_have_attribute("aria-invalid", "true")
    await expect(profile.get_by_role("button", name="Remove picture")).to_be_visible()
    await profile.get_by_role("button", name="Close").click()

    await bob.page.reload()
    picture = bob.chat_row("Ada").locator("img.avatar-picture")
    await expect(picture).to_have_attribute("src", re.compile(r"^/auth/users/[^/]+/avatar\?v=[0-9a-f]+$"))

    async def loaded() -> bool:
        return bool(await picture.evaluate("img => img.complete && img.naturalWidth > 0"))

    await eventually(loaded)

    await ada.page.get_by_role("button", name="Name and picture").click()
    await profile.get_by_role("button", name="Remove picture").click()
    await expect(profile.locator(".profile-picture img")).to_have_count(0)
    await bob.page.reload()
    await expect(bob.chat_row("Ada")).to_be_visible()
    await expect(bob.chat_row("Ada").locator("img")).to_have_count(0)


async def test_at_offers_the_chats_members_and_a_mention_is_marked_for_everyone(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada, bob, cy = [await person(people, browser, base_url, name) for name in ("Ada", "Bob", "Cy")]
    await ada.create_group("Team", [bob, cy])
    options = ada.page.get_by_role("listbox", name="Mention someone")
    await ada.composer.type("Lunch, @")
    await expect(options.get_by_role("option")).to_have_count(2)
    await ada.composer.type("b")
    await expect(options.get_by_role("option")).to_have_text([f"Bob @{bob.username}"])
    await ada.screenshot("mention-options")
    await ada.composer.press("Enter")  # takes Bob; sends nothing
    await expect(ada.composer).to_have_value(f"Lunch, @{bob.username} ")
    await expect(options).to_be_hidden()
    await ada.composer.type("and @nobody?")
    await expect(options).to_be_hidden()
    await ada.composer.press("Enter")

    body = f"Lunch, @{bob.username} and @nobody?"
    for member in (ada, bob, cy):
        if member is not ada:
            await member.open_chat("Team")
        await member.expect_bodies([body])
        await expect(member.messages.last.locator(".mention")).to_have_text([f"@{bob.username}"])
    await expect(bob.messages.last.locator(".mention")).to_have_attribute("data-self", "true")
    await expect(cy.messages.last.locator(".mention[data-self]")).to_have_count(0)
    await bob.screenshot("mentioned")


async def test_reactions_are_picked_toggled_and_counted_live_for_everyone_and_stay_after_a_reload(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob", viewport=PHONE)
    cy = await person(people, browser, base_url, "Cy")
    await ada.create_group("Tea", [bob, cy])
    await ada.send("Tea at five?")
    for member in (bob, cy):
        await member.open_chat("Tea")
        await member.expect_bodies(["Tea at five?"])

    question = bob.messages.first
    await question.hover()
    await question.get_by_role("button", name="Add reaction").click()
    picker = bob.page.get_by_role("group", name="Pick a reaction")
    await expect(picker.get_by_role("button", name=re.compile("^React with "))).to_have_count(6)
    await bob.screenshot("phone-reaction-picker")
    await picker.get_by_role("button", name="React with 👍").click()
    await expect(picker).to_be_hidden()

    def thumbs(member: ChatPage) -> Locator:
        return member.messages.first.get_by_role("group", name="Reactions").get_by_role("button", name="Reaction 👍")

    for member in (ada, bob, cy):
        await expect(thumbs(member)).to_have_accessible_name("Reaction 👍: 1")
    await expect(thumbs(bob)).to_have_attribute("aria-pressed", "true")
    await expect(thumbs(ada)).to_have_attribute("aria-pressed", "false")

    await thumbs(ada).click()  # a click on someone else's reaction puts mine on too
    for member in (ada, bob, cy):
        await expect(thumbs(member)).to_have_accessible_name("Reaction 👍: 2")
    await expect(thumbs(ada)).to_have_attribute("aria-pressed", "true")
    await expect(thumbs(ada)).to_be_focused()  # the keyboard stays where it was
    await ada.screenshot("reactions")

    # From the keyboard: the picker opens on focus, Escape closes it, a pick takes mine off again.
    await cy.messages.first.get_by_role("button", name="Add reaction").focus()
    await cy.page.keyboard.press("Enter")
    await expect(cy.page.get_by_role("button", name="React with 👍")).to_be_focused()
    await cy.page.keyboard.press("Escape")
    await expect(cy.page.get_by_role("group", name="Pick a reaction")).to_be_hidden()
    await expect(cy.messages.first.get_by_role("button", name="Add reaction")).to_be_focused()
    await thumbs(bob).click()  # mine: taken off
    for member in (ada, bob, cy):
        await expect(thumbs(member)).to_have_accessible_name("Reaction 👍: 1")

    await cy.page.reload()
    await cy.expect_chat_screen()
    await cy.open_chat("Tea")
    await expect(thumbs(cy)).to_have_accessible_name("Reaction 👍: 1")
    await expect(thumbs(cy)).to_have_attribute("title", "👍 Ada")


async def test_a_reply_quotes_its_message_and_a_click_on_the_quote_loads_and_shows_an_old_one(
    people: list[ChatPage], browser: Browser, base_url: str
) -> None:
    ada = await person(people, browser, base_url, "Ada")
    bob = await person(people, browser, base_url, "Bob", viewport=PHONE)
    await ada.start_direct_chat(bob)
    await ada.send("message 1")
    history = await _post_as(base_url, ada.username, [f"message {n}" for n in range(2, 121)], at_once=10)

    await bob.page.reload()  # history from the server, the newest page only
    await bob.expect_chat_screen()
    await bob.open_chat("Ada")
    await expect(bob.messages).to_have_count(50)
    newest = bob.messages.last
    await newest.hover()
    await newest.get_by_role("button", name="Reply to message").click()
    await expect(bob.page.get_by_text("Replying to Ada")).to_be_visible()
    await bob.page.keyboard.press("Escape")  # changed my mind
    await expect(bob.page.get_by_text("Replying to Ada")).to_be_hidden()
    await newest.hover()
    await newest.get_by_role("button", name="Reply to message").click()
    await expect(bob.page.get_by_text("Replying to Ada")).to_be_visible()
    await bob.send("Got them all")
    await expect(bob.page.get_by_text("Replying to Ada")).to_be_hidden()
    for member in (ada, bob):
        reply = member.messages.last
        await expect(reply.locator(".body")).to_have_text("Got them all")
        quoted = reply.get_by_role("button", name=f"In reply to Ada: {history[-1]}. Show that message")
        await expect(quoted).to_be_visible()
    await ada.screenshot("reply")

    # Ada answers her very first message, long out of Bob's loaded history.
    await ada.page.reload()
    await ada.expect_chat_screen()
    await ada.open_chat("Bob")
    await expect(ada.messages).to_have_count(50)
    await ada.send("hello again")  # a marker, so that the reply below is not the first thing she sends
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        headers = {"Authorization": f"Bearer {(await log_in(http, ada.username))['access_token']}"}
        chat = (await http.get("/api/chats", headers=headers)).json()["items"][0]["id"]
        first = await http.get(f"/api/chats/{chat}/messages", params={"after_seq": 0, "limit": 1}, headers=headers)
        body = {"body": "about the first one", "reply_to": first.json()["items"][0]["id"]}
        assert (await http.post(f"/api/chats/{chat}/messages", json=body, headers=headers)).status_code == 201
    quote = bob.messages.last.get_by_role("button", name="In reply to Ada: message 1. Show that message")
    await quote.click()
    original = bob.page.locator('.message-list > li.msg[data-seq="1"]')
    await expect(original).to_be_in_viewport()
    await expect(original).to_be_focused()
    await bob.screenshot("phone-reply-found")

    # The quote follows the message it answers: deleted, it says so.
    answered = ada.page.locator('.message-list > li.msg[data-seq="120"]')
    await answered.hover()
    await answered.get_by_role("button", name="Delete message").click()
    await ada.page.get_by_role("button", name="Delete for everyone").click()
    for member in (ada, bob):
        reply = member.page.locator(".message-list > li.msg", has_text="Got them all")
        gone = "In reply to Ada: deleted message. Show that message"
        await expect(reply.locator(".quote")).to_have_accessible_name(gone)
