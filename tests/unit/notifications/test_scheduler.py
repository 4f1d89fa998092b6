"""The decision half's use cases and scheduler on their SQL repositories (SQLite and PostgreSQL) and the
in-memory key-value store, with a manual clock, and the messages' bus consumer fed the bodies messaging
publishes; the channels are a recording `Dispatcher` (the real ones are exercised end to end in
tests/e2e/test_notifications.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.common.bus import BusMessage
from parlour.common.clock import ManualClock
from parlour.common.contracts import USER_REGISTERED, USER_RENAMED, UserRegistered, UserRenamed
from parlour.common.contracts import events as service
from parlour.common.db import create_engine, migrate
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.notifications.adapters.bus import MessagesConsumer, NotificationMetrics, UsersConsumer
from parlour.notifications.adapters.kv import KeyValueStatuses
from parlour.notifications.adapters.sql import SqlDirectory, SqlMemberships, SqlPendingStore, SqlPreferences
from parlour.notifications.application.handlers import NotificationHandlers
from parlour.notifications.application.ports import Dispatcher
from parlour.notifications.application.scheduler import CLAIM_SECONDS, Scheduler
from parlour.notifications.domain.errors import TooManyMutes
from parlour.notifications.domain.model import MAX_MUTES, Notification
from parlour.notifications.domain.rule import NewMessage, Timing
from parlour.notifications.infrastructure.tables import mutes

TIMING = Timing(delay=2.0, window=30.0)


@dataclass
class RecordingDispatcher(Dispatcher):
    sent: list[Notification] = field(default_factory=list)
    failing: bool = False

    async def dispatch(self, notifications: Sequence[Notification]) -> None:
        if self.failing:
            raise ConnectionError("the channels' database is down")
        self.sent.extend(notifications)


@dataclass
class World:
    clock: ManualClock
    handlers: NotificationHandlers
    scheduler: Scheduler
    dispatcher: RecordingDispatcher
    chat: str
    users: dict[str, str]
    engine: AsyncEngine

    def message(self, seq: int, sender: str = "ada", mentioned: frozenset[str] = frozenset()) -> NewMessage:
        members = tuple(self.users.values())
        ids = frozenset(self.users[name] for name in mentioned)
        return NewMessage(self.chat, seq, self.users[sender], members, ids, "group", "Team", f"hello {seq}")

    def told(self, name: str) -> list[Notification]:
        return [n for n in self.dispatcher.sent if n.user_id == self.users[name] and n.chat_id == self.chat]

    async def due(self, seconds: float) -> int:
        self.clock.advance(seconds)
        return await self.scheduler.run_once()


def build(
    engine: AsyncEngine, clock: ManualClock, kv: InMemoryKeyValueStore, dispatcher: Dispatcher
) -> tuple[NotificationHandlers, Scheduler]:
    pending, memberships = SqlPendingStore(engine), SqlMemberships(engine)
    preferences, directory = SqlPreferences(engine), SqlDirectory(engine)
    statuses = KeyValueStatuses(kv)
    scheduler = Scheduler(pending, memberships, preferences, directory, statuses, dispatcher, clock, TIMING)
    handlers = NotificationHandlers(pending, memberships, preferences, directory, statuses, clock, TIMING)
    return handlers, scheduler


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    engine = create_engine(database_url)
    await migrate(engine)
    clock = ManualClock()
    dispatcher = RecordingDispatcher()
    handlers, scheduler = build(engine, clock, InMemoryKeyValueStore(clock), dispatcher)
    users = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in ("ada", "bob", "cy")}
    chat = f"chat-{uuid.uuid4().hex[:8]}"
    await handlers.members_changed(chat, 1, list(users.values()))
    await handlers.users_named({user_id: name.capitalize() for name, user_id in users.items()})
    yield World(clock, handlers, scheduler, dispatcher, chat, users, engine)
    await engine.dispose()


async def test_an_offline_member_is_told_once_after_the_grace_with_the_count(world: World) -> None:
    await world.handlers.statuses_changed({world.users["cy"]: "online"})
    noted = await world.handlers.messages_sent([world.message(1), world.message(2, "bob")])
    assert noted == 4, "cy too: whether she is looking is decided when it is due"
    assert await world.due(1.0) == 0, "still in its grace"
    await world.due(1.0)
    assert world.told("cy") == [], "online: nothing"
    (bob,) = world.told("bob")
    assert (bob.title, bob.count, bob.body) == ("New message from Ada in Team", 1, "Ada: hello 1")
    (ada,) = world.told("ada")
    assert (ada.title, ada.count, ada.id) == ("New message from Bob in Team", 1, f"{world.chat}:{ada.user_id}:2")
    assert await world.due(60.0) == 0, "settled: nothing waits"


async def test_a_batch_whose_members_change_tells_a_newcomer_only_of_what_came_after_they_joined(
    world: World,
) -> None:
    dee = f"dee-{uuid.uuid4().hex[:8]}"
    before, after = world.message(1), world.message(2, "bob")
    joined = NewMessage(world.chat, 3, world.users["bob"], (*after.member_ids, dee), frozenset(), "group", "Team", "hi")
    noted = await world.handlers.messages_sent([joined, before, after])  # any order: folded in seq order
    assert noted == 2 + 2 + 3, "ada's and bob's own are not noted for them; dee only from seq 3"
    await world.handlers.members_changed(world.chat, 2, [*world.users.values(), dee])
    await world.due(2.0)
    (cy,) = world.told("cy")
    assert (cy.count, cy.id) == (3, f"{world.chat}:{world.users['cy']}:3")
    (told_dee,) = [n for n in world.dispatcher.sent if n.user_id == dee]
    assert told_dee.count == 1
    (ada,) = world.told("ada")
    assert ada.count == 2, "seq 2 and 3, from bob"


async def test_a_member_who_leaves_just_after_a_message_arrives_is_told_when_it_is_due(world: World) -> None:
    # Presence hears of a closed tab up to a second late: the message may arrive while cy still reads online.
    await world.handlers.statuses_changed({world.users["cy"]: "online"})
    await world.handlers.messages_sent([world.message(1)])
    await world.handlers.statuses_changed({world.users["cy"]: "offline"})
    await world.due(2.0)
    (cy,) = world.told("cy")
    assert cy.count == 1


async def test_one_notification_per_window_then_the_next_counts_what_came_meanwhile(world: World) -> None:
    await world.handlers.messages_sent([world.message(1)])
    await world.due(2.0)
    for seq in (2, 3, 4):
        await world.handlers.messages_sent([world.message(seq)])
    await world.due(2.0)
    assert len(world.told("bob")) == 1, "the window holds the next one back"
    await world.due(26.0)
    assert [n.count for n in world.told("bob")] == [1], "not before the window ends"
    await world.due(2.0)
    assert [(n.count, n.last_seq) for n in world.told("bob")] == [(1, 1), (3, 4)]


async def test_a_member_who_reads_in_time_mutes_or_comes_online_is_not_told(world: World) -> None:
    await world.handlers.messages_sent([world.message(1), world.message(2)])
    await world.handlers.reads_moved([(world.chat, world.users["bob"], 2)])
    await world.handlers.mute(world.users["cy"], world.chat)
    await world.due(2.0)
    assert world.told("bob") == []
    assert world.told("cy") == []
    await world.handlers.messages_sent([world.message(3)])
    await world.handlers.statuses_changed({world.users["bob"]: "online"})
    await world.due(2.0)
    assert world.told("bob") == []


async def test_a_reader_partway_is_told_only_of_what_they_have_not_read(world: World) -> None:
    await world.handlers.messages_sent([world.message(seq) for seq in (1, 2, 3)])
    await world.handlers.reads_moved([(world.chat, world.users["bob"], 2)])
    await world.due(2.0)
    assert [(n.count, n.title) for n in world.told("bob")] == [(1, "New message from Ada in Team")]


async def test_a_repeated_batch_notes_nothing_new(world: World) -> None:
    await world.handlers.messages_sent([world.message(1), world.message(2)])
    await world.handlers.messages_sent([world.message(1), world.message(2)])  # a redelivery
    await world.due(2.0)
    assert [n.count for n in world.told("bob")] == [2]


async def test_a_mention_is_urgent_and_the_preview_can_be_turned_off(world: World) -> None:
    assert await world.handlers.preview(world.users["bob"]) is True
    await world.handlers.set_preview(world.users["bob"], False)
    await world.handlers.messages_sent([world.message(1, mentioned=frozenset({"bob"}))])
    await world.due(2.0)
    (bob,) = world.told("bob")
    assert (bob.urgency, bob.title, bob.body) == ("high", "Parlour", "New message in Team")
    (cy,) = world.told("cy")
    assert cy.urgency == "normal"


async def test_a_mute_is_kept_for_any_chat_up_to_the_limit_and_a_member_who_left_is_not_told(world: World) -> None:
    await world.handlers.mute("stranger", world.chat)  # no effect on anyone: only members are told
    async with world.engine.begin() as connection:
        others = [{"user_id": "stranger", "chat_id": f"other-{n}"} for n in range(MAX_MUTES - 1)]
        await connection.execute(insert(mutes), others)
    with pytest.raises(TooManyMutes):
        await world.handlers.mute("stranger", "one-more")
    await world.handlers.mute("stranger", world.chat)  # again: no change, even at the limit
    assert len(await world.handlers.mutes("stranger")) == MAX_MUTES
    await world.handlers.mute(world.users["bob"], world.chat)
    assert await world.handlers.mutes(world.users["bob"]) == [world.chat]
    await world.handlers.unmute(world.users["bob"], world.chat)
    assert await world.handlers.mutes(world.users["bob"]) == []
    await world.handlers.messages_sent([world.message(1)])
    await world.handlers.members_changed(world.chat, 2, [world.users["ada"], world.users["bob"]])
    await world.handlers.members_changed(world.chat, 1, list(world.users.values()))  # older: ignored
    await world.due(2.0)
    assert len(world.told("bob")) == 1
    assert world.told("cy") == []


async def test_a_failed_dispatch_is_retried_with_the_same_id_once_the_claim_lapses(world: World) -> None:
    await world.handlers.messages_sent([world.message(1)])
    world.dispatcher.failing = True
    with pytest.raises(ConnectionError):
        await world.due(2.0)
    world.dispatcher.failing = False
    assert await world.due(1.0) == 0, "claimed by the round that failed"
    await world.due(CLAIM_SECONDS)
    (bob,) = world.told("bob")
    assert bob.id == f"{world.chat}:{world.users['bob']}:1"


async def test_the_consumer_folds_a_batchs_sends_once_and_applies_a_newcomers_read_after_their_joining(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = MessagesConsumer(world.handlers, NotificationMetrics(CollectorRegistry()))
    folds: list[int] = []
    fold = world.handlers.messages_sent

    async def counted(messages: Sequence[NewMessage]) -> int:
        folds.append(len(messages))
        return await fold(messages)

    monkeypatch.setattr(world.handlers, "messages_sent", counted)
    now = datetime.now(UTC)
    dee = f"dee-{uuid.uuid4().hex[:8]}"
    members = [*world.users.values(), dee]
    sent = [
        service.MessageSent(
            chat_id=world.chat, seq=seq, message_id=f"m{seq}", sender_id=world.users["ada"],
            member_ids=members if seq > 1 else list(world.users.values()), created_at=now,
            mentioned_user_ids=[], chat_kind="group", chat_title="Team", preview=f"hello {seq}",
        )
        for seq in (1, 2, 3)
    ]  # fmt: skip
    bob_read = service.ReadMoved(chat_id=world.chat, user_id=world.users["bob"], seq=3)
    joined = service.ChatMembersChanged(chat_id=world.chat, version=2, member_ids=members, removed_ids=[])
    dee_read = service.ReadMoved(chat_id=world.chat, user_id=dee, seq=2)
    bodies = [
        service.ServiceEvents([sent[0]]),
        service.ServiceEvents([bob_read]),
        service.ServiceEvents([joined]),
        service.ServiceEvents([sent[1], dee_read]),
        service.ServiceEvents([sent[2]]),
    ]
    await consumer([BusMessage(type=service.SERVICE_EVENTS_MESSAGE, body=msgspec.json.encode(b)) for b in bodies])
    assert folds == [3], "the reads and the joining between the sends do not cut the batch's fold"
    await world.due(2.0)
    assert world.told("bob") == [], "read up to 3 before the due time"
    (cy,) = world.told("cy")
    assert (cy.count, cy.title, cy.body) == (3, "3 new messages from Ada in Team", "Ada: hello 3")
    (told_dee,) = [n for n in world.dispatcher.sent if n.user_id == dee]
    assert told_dee.count == 1, "dee's read, after her joining in the batch, was kept: only 3 is unread"


@pytest.mark.postgres
async def test_two_schedulers_never_take_the_same_state(postgres_database: str) -> None:
    engine = create_engine(postgres_database)
    await migrate(engine)
    clock = ManualClock()
    kv = InMemoryKeyValueStore(clock)
    one, two = RecordingDispatcher(), RecordingDispatcher()
    handlers, first = build(engine, clock, kv, one)
    _, second = build(engine, clock, kv, two)
    chat = f"chat-{uuid.uuid4().hex[:8]}"
    members = [f"u{index}-{uuid.uuid4().hex[:6]}" for index in range(300)]
    await handlers.members_changed(chat, 1, members)
    await handlers.messages_sent([NewMessage(chat, 1, members[0], tuple(members), frozenset(), "group", "T", "")])
    clock.advance(2.0)
    while sum(await asyncio.gather(first.run_once(), second.run_once())):
        pass
    ids = [n.id for n in one.sent + two.sent if n.chat_id == chat]
    assert len(ids) == len(set(ids)) == 299
    await engine.dispose()


async def test_a_rename_heard_on_the_users_queue_names_the_sender_in_what_comes_after(world: World) -> None:
    ada = world.users["ada"]
    renamed = UserRenamed(user_id=ada, display_name="Ada Lovelace")
    registered = UserRegistered(user_id="someone-new", username="neo", display_name="Neo")
    await UsersConsumer(world.handlers)(
        [
            BusMessage(type=USER_REGISTERED, body=msgspec.json.encode(registered)),
            BusMessage(type=USER_RENAMED, body=msgspec.json.encode(renamed)),
        ]
    )
    await world.handlers.messages_sent([world.message(1)])
    await world.due(2.0)
    (bob,) = world.told("bob")
    assert bob.title == "New message from Ada Lovelace in Team"
    with pytest.raises(msgspec.ValidationError):
        await UsersConsumer(world.handlers)([BusMessage(type="user.deleted", body=b"{}")])
