"""Who is told, and when, through the public surface: real accounts, chats and WebSocket sessions, and a
real webhook receiver (an HTTP server of the test's) registered as each member's webhook; embedded mode
over SQLite and PostgreSQL. docs/subsystems/notifications.md maps its cases here.

Timings are short (`DELAY`, `WINDOW`); every wait is for an event (a webhook arriving, a presence frame),
with a timeout. A member who must get nothing is checked once a member who must get something from the
same message got it: both were decided in the same round.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.clients import Account
from tests.harness import make_settings, running_parlour
from tests.notifications import (
    WebhookReceiver,
    add_webhook,
    mute,
    named_account,
    read_up_to,
    send,
    webhook_receiver,
)
from tests.presence import seen_as, snapshot
from tests.ws_client import Client, direct_chat, group_chat

DELAY, WINDOW = 1.5, 4.0


@dataclass
class Setup:
    http: httpx.AsyncClient
    receiver: WebhookReceiver
    receiver_url: str

    async def member(self, name: str) -> Account:
        """A new account shown as `name` capitalised, whose webhook is the receiver's `/<name>`."""
        account = await named_account(self.http, name.capitalize())
        await add_webhook(self.http, account, f"{self.receiver_url}/{name}")
        return account


@pytest.fixture
async def setup(database_url: str, tmp_path: Path) -> AsyncIterator[Setup]:
    settings = make_settings(
        tmp_path,
        database_url,
        notifications_delay_seconds=DELAY,
        notifications_window_seconds=WINDOW,
        notifications_allow_private_targets=True,
    )
    async with (
        webhook_receiver() as (receiver, receiver_url),
        running_parlour(settings) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        yield Setup(http, receiver, receiver_url)


async def test_an_offline_member_gets_one_notification_per_window_counting_the_messages(setup: Setup) -> None:
    ada, bob = await setup.member("ada"), await setup.member("bob")
    chat_id = await group_chat(setup.http, ada, [bob], title="Team")
    for body in ("one", "two", "three"):
        last = await send(setup.http, ada, chat_id, body)
    (first,) = await setup.receiver.wait("/bob")
    told = first.json()["data"]
    assert (told["count"], told["last_seq"], told["chat_id"]) == (3, last, chat_id)
    assert told["title"] == "3 new messages from Ada in Team"
    assert told["body"] == "Ada: three"
    assert first.headers["webhook-id"] == f"{chat_id}:{bob.user_id}:{last}"

    await send(setup.http, ada, chat_id, "four")
    second = (await setup.receiver.wait("/bob", 2))[1]
    assert second.at - first.at >= WINDOW - 0.1, "the next one waits for the window"
    assert second.json()["data"]["count"] == 1
    assert setup.receiver.at("/ada") == [], "the sender is never told"


async def test_the_online_a_muter_and_a_reader_in_time_get_nothing_while_away_and_offline_are_told(
    setup: Setup,
) -> None:
    ada, bob, cy, dee, eve, fay = [await setup.member(name) for name in ("ada", "bob", "cy", "dee", "eve", "fay")]
    chat_id = await group_chat(setup.http, ada, [bob, cy, dee, eve, fay], title="Team")
    muted = await mute(setup.http, cy, chat_id)
    assert muted.status_code == 200, muted.text
    watcher = await Client.connect(setup.http, ada, presence=True)
    await snapshot(watcher)
    online = await Client.connect(setup.http, bob)
    await seen_as(watcher, bob.user_id, "online")
    away = await Client.connect(setup.http, eve)
    await away.send({"type": "activity", "state": "idle"})
    await seen_as(watcher, eve.user_id, "away")

    seq = await send(setup.http, ada, chat_id, "hello all")
    await read_up_to(setup.http, dee, chat_id, seq)  # well within the grace
    (offline,) = await setup.receiver.wait("/fay")
    (idle,) = await setup.receiver.wait("/eve")
    assert offline.json()["data"]["count"] == idle.json()["data"]["count"] == 1
    for name in ("ada", "bob", "cy", "dee"):
        assert setup.receiver.at(f"/{name}") == [], f"{name} is not told"
    for client in (watcher, online, away):
        await client.close()


async def test_a_direct_message_is_urgent_and_the_preview_off_hides_it(setup: Setup) -> None:
    ada, bob = await setup.member("ada"), await setup.member("bob")
    chat_id = await direct_chat(setup.http, ada, bob)
    turned = await setup.http.put("/api/notifications/settings", json={"preview": False}, headers=bob.headers)
    assert turned.status_code == 200, turned.text
    await send(setup.http, ada, chat_id, "a secret")
    (told,) = await setup.receiver.wait("/bob")
    notification = told.json()["data"]
    assert notification["urgency"] == "high"
    assert "a secret" not in told.body.decode()
    assert "Ada" not in told.body.decode()
    assert notification["body"] == "New direct message"


async def test_a_renamed_group_is_named_by_its_new_title(setup: Setup) -> None:
    ada, bob = await setup.member("ada"), await setup.member("bob")
    chat_id = await group_chat(setup.http, ada, [bob], title="Team")
    await send(setup.http, ada, chat_id, "before")  # messaging now holds the chat's members (and title)
    (first,) = await setup.receiver.wait("/bob")
    assert first.json()["data"]["title"] == "New message from Ada in Team"
    renamed = await setup.http.patch(f"/api/chats/{chat_id}", json={"title": "Crew"}, headers=ada.headers)
    assert renamed.status_code == 200, renamed.text
    await send(setup.http, ada, chat_id, "after")
    second = (await setup.receiver.wait("/bob", 2))[1]
    assert second.json()["data"]["title"] == "New message from Ada in Crew"
