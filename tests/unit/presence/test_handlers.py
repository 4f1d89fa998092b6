"""The presence use cases on the in-memory key-value store (the embedded production store) and SQLite,
with a manual clock: leases that lapse, late and repeated events, activity, and the coalesced fan-out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from parlour.common.clock import ManualClock
from parlour.common.contracts import GATEWAY_LEASES
from parlour.common.db import create_engine, migrate
from parlour.common.kv import Write
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.presence.adapters.kv import KeyValuePresenceState
from parlour.presence.adapters.sql import SqlContacts, SqlPrivacySettings
from parlour.presence.application.contacts import MembershipView
from parlour.presence.application.fanout import Fanout
from parlour.presence.application.handlers import PresenceHandlers
from parlour.presence.application.ports import Activity, Closed, Frames, Opened, Snapshot
from parlour.presence.domain.model import Presence, Seen, Status

LEASE = 3.0


@dataclass
class RecordedFrames(Frames):
    sent_snapshots: list[tuple[str, str | None, dict[str, Seen]]] = field(default_factory=list)
    publications: int = 0
    sent: list[tuple[tuple[str, ...], dict[str, Seen]]] = field(default_factory=list)
    told: list[dict[str, Presence]] = field(default_factory=list)

    async def snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        self.publications += 1
        self.sent_snapshots.extend((s.user_id, s.session_id, dict(s.seen)) for s in snapshots)

    async def updates(self, updates: Sequence[tuple[Sequence[str], Mapping[str, Seen]]]) -> None:
        self.sent.extend((tuple(watchers), dict(seen)) for watchers, seen in updates)

    async def statuses(self, changes: Mapping[str, Presence]) -> None:
        self.told.append(dict(changes))

    def heard_by(self, watcher: str) -> list[dict[str, Seen]]:
        return [seen for watchers, seen in self.sent if watcher in watchers]


@dataclass
class World:
    clock: ManualClock
    kv: InMemoryKeyValueStore
    frames: RecordedFrames
    fanout: Fanout
    handlers: PresenceHandlers
    contacts: MembershipView

    async def lease(self, gateway_id: str) -> None:
        await self.kv.add_member(GATEWAY_LEASES, gateway_id, LEASE)

    async def flush(self) -> int:
        self.clock.advance(1.0)
        return await self.fanout.flush()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'presence.db'}")
    await migrate(engine)
    clock = ManualClock()
    kv = InMemoryKeyValueStore(clock)
    state, frames = KeyValuePresenceState(kv), RecordedFrames()
    contacts = MembershipView(SqlContacts(engine), clock)
    fanout = Fanout(state, contacts, frames, clock)
    handlers = PresenceHandlers(state, contacts, SqlPrivacySettings(engine), frames, fanout, clock)
    await contacts.apply("chat", 1, ["alice", "bob", "carol"])
    yield World(clock, kv, frames, fanout, handlers, contacts)
    await engine.dispose()


async def status(world: World, user_id: str) -> Status:
    ((_, seen),) = await world.handlers.look_up(user_id, [user_id])
    return seen.status


async def test_the_sessions_of_a_gateway_whose_lease_lapsed_are_closed_by_the_sweep(world: World) -> None:
    await world.lease("g1")
    await world.lease("g2")
    await world.handlers.session_opened("bob", "s1", "g1")
    await world.handlers.session_opened("carol", "s2", "g1")
    await world.handlers.session_opened("carol", "s3", "g2")
    world.clock.advance(LEASE - 0.5)
    await world.lease("g2")
    assert await world.handlers.sweep() == 0, "both leases live"
    world.clock.advance(0.5)
    assert await world.handlers.sweep() == 2, "g1 lapsed: its two sessions are closed"
    assert await status(world, "bob") is Status.OFFLINE
    assert await status(world, "carol") is Status.ONLINE, "carol's other session lives on g2"
    ((_, bob),) = await world.handlers.look_up("alice", ["bob"])
    assert bob == Seen(Status.OFFLINE, world.clock.now())
    assert await world.handlers.sweep() == 0, "a dead gateway is swept once"


async def test_a_session_opened_on_an_already_dead_gateway_is_swept_again(world: World) -> None:
    await world.lease("g1")
    await world.handlers.session_opened("bob", "s1", "g1")
    world.clock.advance(LEASE)
    assert await world.handlers.sweep() == 1
    await world.handlers.session_opened("bob", "s2", "g1")  # an event that was still on its way
    assert await world.handlers.sweep() == 1
    assert await status(world, "bob") is Status.OFFLINE


async def test_a_late_open_after_its_close_and_a_repeated_open_change_nothing(world: World) -> None:
    await world.lease("g1")
    await world.handlers.session_closed("bob", "s1", "g1")
    await world.handlers.session_opened("bob", "s1", "g1")
    assert await status(world, "bob") is Status.OFFLINE
    assert world.frames.sent_snapshots == [], "no snapshot for a session already closed"
    assert await world.handlers.session_opened("bob", "s2", "g1")
    assert await world.handlers.session_opened("bob", "s2", "g1"), "a repeat: still live"
    contacts = {"alice": Seen(Status.OFFLINE, None), "carol": Seen(Status.OFFLINE, None)}
    assert world.frames.sent_snapshots == [("bob", "s2", contacts)] * 2, "of its contacts only, again on a repeat"
    assert await status(world, "bob") is Status.ONLINE
    await world.handlers.session_closed("bob", "s2", "g1")
    assert await status(world, "bob") is Status.OFFLINE


async def test_activity_makes_a_user_away_when_every_session_is_idle_and_ignores_unknown_sessions(
    world: World,
) -> None:
    await world.lease("g1")
    await world.handlers.session_opened("bob", "s1", "g1")
    await world.handlers.session_opened("bob", "s2", "g1")
    await world.handlers.report_activity("bob", "nobody", idle=True)
    await world.handlers.report_activity("bob", "s1", idle=True)
    assert await status(world, "bob") is Status.ONLINE
    await world.handlers.report_activity("bob", "s2", idle=True)
    assert await status(world, "bob") is Status.AWAY
    await world.handlers.session_closed("bob", "s2", "g1")
    assert await status(world, "bob") is Status.AWAY
    await world.handlers.report_activity("bob", "s1", idle=False)
    assert await status(world, "bob") is Status.ONLINE


async def test_many_changes_within_a_second_reach_each_watcher_as_one_frame_naming_each_user_once(
    world: World,
) -> None:
    await world.lease("g1")
    for round_ in range(3):
        await world.handlers.session_opened("bob", f"b{round_}", "g1")
        await world.handlers.session_closed("bob", f"b{round_}", "g1")
    await world.handlers.session_opened("carol", "c1", "g1")
    assert await world.flush() == 3, "alice, bob and carol each get one frame"
    left_at = world.clock.now() - 1
    assert world.frames.heard_by("alice") == [
        {"bob": Seen(Status.OFFLINE, left_at), "carol": Seen(Status.ONLINE, None)}
    ]
    assert world.frames.heard_by("bob") == [{"carol": Seen(Status.ONLINE, None)}]
    assert await world.fanout.flush() == 0, "nothing changed since"


async def test_a_flush_waits_for_its_interval(world: World) -> None:
    await world.lease("g1")
    await world.handlers.session_opened("bob", "b1", "g1")
    assert await world.flush() == 2
    await world.handlers.session_closed("bob", "b1", "g1")
    world.clock.advance(0.5)
    assert await world.fanout.flush() == 0, "half a second after the last flush: not yet"
    world.clock.advance(0.5)
    assert await world.fanout.flush() == 2


async def test_hiding_is_heard_as_offline_and_showing_again_as_the_truth(world: World) -> None:
    await world.lease("g1")
    await world.handlers.session_opened("bob", "b1", "g1")
    await world.flush()
    await world.handlers.set_hidden("bob", True)
    await world.flush()
    assert world.frames.heard_by("alice")[-1] == {"bob": Seen(Status.OFFLINE, None)}
    await world.handlers.set_hidden("bob", True)
    assert await world.flush() == 0, "hiding again changes nothing anyone sees"
    await world.handlers.set_hidden("bob", False)
    await world.flush()
    assert world.frames.heard_by("alice")[-1] == {"bob": Seen(Status.ONLINE, None)}
    assert await world.handlers.hidden("bob") is False


async def test_a_newcomer_hears_the_members_and_they_hear_the_newcomer(world: World) -> None:
    await world.lease("g1")
    await world.handlers.session_opened("alice", "a1", "g1")
    await world.handlers.session_opened("dan", "d1", "g1")
    await world.flush()
    await world.handlers.members_changed("chat", 2, ["alice", "bob", "carol", "dan"])
    assert world.frames.sent_snapshots[-1] == (
        "dan",
        None,
        {"alice": Seen(Status.ONLINE, None), "bob": Seen(Status.OFFLINE, None), "carol": Seen(Status.OFFLINE, None)},
    )
    await world.flush()
    assert world.frames.heard_by("alice")[-1] == {"dan": Seen(Status.ONLINE, None)}
    await world.handlers.members_changed("chat", 2, ["alice"])
    assert await world.contacts.of("alice") == {"bob", "carol", "dan"}, "a repeated version is ignored"


async def test_a_chats_members_are_read_once_per_second_and_at_once_after_a_change_here(world: World) -> None:
    reads: list[list[str]] = []
    projection = world.contacts._contacts
    members_of = projection.members_of

    async def counted(chat_ids: Collection[str]) -> dict[str, set[str]]:
        reads.append(sorted(chat_ids))
        return await members_of(chat_ids)

    projection.members_of = counted  # type: ignore[method-assign]
    assert await world.contacts.of("alice") == {"bob", "carol"}
    assert await world.contacts.of("bob") == {"alice", "carol"}
    assert reads == [["chat"]], "the second look-up used the cache"
    await world.contacts.apply("chat", 2, ["alice", "bob", "carol", "dan"])
    assert await world.contacts.of("alice") == {"bob", "carol", "dan"}, "a change made here is seen at once"
    world.clock.advance(1.0)
    await world.contacts.of("alice")
    assert len(reads) == 3, "read again after a change, and after a second"


async def test_the_snapshots_of_a_batch_of_openings_go_out_in_one_publication(world: World) -> None:
    await world.lease("g1")
    await world.contacts.apply("other", 1, ["dan", "erin"])
    for user_id in ("alice", "bob", "dan"):
        assert await world.handlers.apply([Opened(user_id, f"s-{user_id}", "g1")])
    assert world.frames.publications == 0
    await world.handlers.send_snapshots([("alice", "s-alice"), ("bob", "s-bob"), ("dan", "s-dan")])
    assert world.frames.publications == 1
    online, offline = Seen(Status.ONLINE, None), Seen(Status.OFFLINE, None)
    assert world.frames.sent_snapshots == [
        ("alice", "s-alice", {"bob": online, "carol": offline}),
        ("bob", "s-bob", {"alice": online, "carol": offline}),
        ("dan", "s-dan", {"erin": offline}),
    ]


async def test_the_services_hear_each_status_change_once_per_flush_even_of_a_hidden_user(world: World) -> None:
    await world.lease("g1")
    await world.handlers.set_hidden("bob", True)
    await world.handlers.session_opened("bob", "s1", "g1")
    await world.handlers.report_activity("bob", "s1", idle=True)
    await world.flush()
    assert world.frames.told == [{"bob": Presence(Status.AWAY, None)}], "the status at flush time, hidden or not"
    await world.handlers.report_activity("bob", "s1", idle=True)  # no change
    await world.flush()
    assert len(world.frames.told) == 1
    await world.handlers.session_closed("bob", "s1", "g1")
    left_at = world.clock.now()
    await world.flush()
    assert world.frames.told[-1] == {"bob": Presence(Status.OFFLINE, left_at)}


class CountingStore(InMemoryKeyValueStore):
    """The in-memory store, counting the calls that would each be one round trip to Redis."""

    calls = 0

    async def fields_many(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        self.calls += 1
        return await super().fields_many(keys)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.calls += 1
        return await super().get_many(keys)

    async def write_many(self, writes: Sequence[Write]) -> None:
        self.calls += 1
        await super().write_many(writes)


async def test_a_batch_of_a_thousand_openings_costs_three_store_round_trips(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'presence.db'}")
    await migrate(engine)
    clock = ManualClock()
    kv = CountingStore(clock)
    state, frames = KeyValuePresenceState(kv), RecordedFrames()
    contacts = MembershipView(SqlContacts(engine), clock)
    fanout = Fanout(state, contacts, frames, clock, capacity=2_000)
    handlers = PresenceHandlers(state, contacts, SqlPrivacySettings(engine), frames, fanout, clock)
    try:
        live = await handlers.apply([Opened(f"u{i}", f"s{i}", "g1") for i in range(1_000)])
        assert len(live) == 1_000
        assert kv.calls == 3, "one read of sessions, one of presence, one write"
        ((_, seen),) = await handlers.look_up("u7", ["u7"])
        assert seen.status is Status.ONLINE
    finally:
        await engine.dispose()


async def test_changes_in_one_batch_apply_in_order_as_they_would_one_by_one(world: World) -> None:
    await world.lease("g1")
    live = await world.handlers.apply(
        [
            Opened("bob", "b1", "g1"),
            Opened("bob", "b2", "g1"),
            Activity("bob", "b1", idle=True),
            Closed("bob", "b2", "g1"),
            Opened("bob", "b2", "g1"),  # after its close: a tombstone, not live again
            Opened("carol", "c1", "g1"),
            Closed("carol", "c1", "g1"),
        ]
    )
    assert live == [("bob", "b1"), ("bob", "b2"), ("carol", "c1")]
    assert await status(world, "bob") is Status.AWAY, "b1 idle, b2 closed"
    ((_, carol),) = await world.handlers.look_up("alice", ["carol"])
    assert carol == Seen(Status.OFFLINE, world.clock.now()), "online and gone within the batch: last seen now"
    assert await world.flush() == 3, "alice hears both in one frame, bob hears carol, carol hears bob"
    assert world.frames.heard_by("alice")[-1] == {"bob": Seen(Status.AWAY, None), "carol": carol}
