"""The outbox relay (docs/subsystems/outbox.md): stored with the commit, published after it, never lost."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from parlour.common.errors import Unavailable
from parlour.messaging.application.outbox import OutboxRelay
from parlour.messaging.application.ports import EventChannel, Publication, WriterRegistry
from parlour.messaging.domain.messages import Event, MessageAcknowledged, MessageSent
from parlour.messaging.domain.model import Message
from tests.unit.messaging.fakes import MemoryStore

AT = datetime(2026, 1, 2, tzinfo=UTC)


def message(seq: int) -> Message:
    return Message(f"m{seq}", "c1", seq, "ann", f"k{seq}", f"body {seq}", AT)


class Channel(EventChannel):
    """Renders each event as one publication naming its seq; records what is published; can fail."""

    def __init__(self) -> None:
        self.published: list[tuple[str | None, list[int]]] = []
        self.failing = False

    def render(self, events: Sequence[Event]) -> list[Publication]:
        seqs = [event.message.seq for event in events if isinstance(event, MessageSent | MessageAcknowledged)]
        kind = "answer" if all(isinstance(event, MessageAcknowledged) for event in events) else "lasting"
        return [Publication(("user.bob",), kind, json.dumps(seqs).encode())]

    def pack(self, publications: Sequence[Publication]) -> bytes:
        return json.dumps([[p.type, p.body.decode()] for p in publications]).encode()

    def unpack(self, payload: bytes) -> list[Publication]:
        return [Publication(("user.bob",), kind, body.encode()) for kind, body in json.loads(payload)]

    async def publish(self, publications: Sequence[Publication], ref: str | None) -> None:
        if self.failing:
            raise Unavailable("the bus is down")
        for publication in publications:
            self.published.append((publication.type, json.loads(publication.body)))

    @property
    def lasting(self) -> list[int]:
        return [seq for kind, seqs in self.published if kind == "lasting" for seq in seqs]


class Registry(WriterRegistry):
    def __init__(self) -> None:
        self.alive: set[str] = set()

    async def heartbeat(self, writer: str, ttl: float) -> None:
        self.alive.add(writer)

    async def live(self) -> set[str]:
        return set(self.alive)

    async def leave(self, writer: str) -> None:
        self.alive.discard(writer)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def relay(store: MemoryStore, channel: Channel, registry: Registry, writer: str = "w1") -> OutboxRelay:
    return OutboxRelay(store, channel, registry, writer=writer)


async def commit(relay: OutboxRelay, store: MemoryStore, *events: Event) -> None:
    async with store() as uow:
        await relay.commit(uow, events)


def entries(store: MemoryStore) -> list[str]:
    return [writer for writer, _ in store.state.outbox.values()]


async def test_events_are_stored_with_the_commit_published_after_it_and_then_removed(store: MemoryStore) -> None:
    channel, registry = Channel(), Registry()
    outbox = relay(store, channel, registry)
    await outbox.start()
    await commit(outbox, store, MessageSent(message(1), ("ann", "bob")))
    assert channel.lasting == [1]
    assert entries(store) == ["w1"], "published, its removal rides along with the next transaction"
    await commit(outbox, store, MessageSent(message(2), ("ann", "bob")))
    assert channel.lasting == [1, 2]
    assert len(entries(store)) == 1
    await outbox.stop()
    assert entries(store) == []
    assert registry.alive == set()


async def test_answers_are_published_but_never_stored(store: MemoryStore) -> None:
    channel = Channel()
    outbox = relay(store, channel, Registry())
    await commit(outbox, store, MessageAcknowledged(message(1), "s1"))
    assert channel.published == [("answer", [1])]
    assert entries(store) == []


async def test_after_a_failed_publication_entries_leave_from_the_database_in_order(store: MemoryStore) -> None:
    channel = Channel()
    outbox = relay(store, channel, Registry())
    channel.failing = True
    await commit(outbox, store, MessageSent(message(1), ("ann", "bob")))
    channel.failing = False
    await commit(outbox, store, MessageSent(message(2), ("ann", "bob")))
    assert channel.lasting == [], "behind: a newer entry waits for the older one"
    await outbox._tick()
    assert channel.lasting == [1, 2]
    assert entries(store) == []
    await commit(outbox, store, MessageSent(message(3), ("ann", "bob")))
    assert channel.lasting == [1, 2, 3], "caught up: inline again"


async def test_a_failed_commit_stores_and_publishes_nothing(store: MemoryStore) -> None:
    channel = Channel()
    outbox = relay(store, channel, Registry())

    class Refused(Exception):
        pass

    async def refuse() -> None:
        raise Refused

    async with store() as uow:
        uow.commit = refuse  # type: ignore[method-assign]
        with pytest.raises(Refused):
            await outbox.commit(uow, [MessageSent(message(1), ("ann", "bob"))])
    assert channel.published == []
    await outbox._tick()  # the relay checks the database, in case the commit happened after all
    assert channel.published == []
    assert entries(store) == []


async def test_a_dead_writers_entries_are_published_once_by_another_relay(store: MemoryStore) -> None:
    channel, registry = Channel(), Registry()
    dead = relay(store, Channel(), registry, writer="dead")
    await dead.start()
    dead._after_commit = lambda: (_ for _ in ()).throw(SystemExit)  # dies after the commit
    with pytest.raises(SystemExit):
        await commit(dead, store, MessageSent(message(1), ("ann", "bob")))
    alive = relay(store, Channel(), registry, writer="alive")
    await alive.start()
    await commit(alive, store, MessageSent(message(2), ("ann", "bob")))
    survivor = relay(store, channel, registry, writer="survivor")
    await survivor.start()
    assert channel.lasting == [], "the dead writer still counts as alive until its heartbeat expires"
    registry.alive.discard("dead")
    await survivor._tick()
    assert channel.lasting == [1]
    assert entries(store) == ["alive"], "a live writer's entry is its own business"
    await survivor._tick()
    assert channel.lasting == [1], "published once"


async def test_an_unreadable_entry_is_skipped_not_a_blockage(store: MemoryStore) -> None:
    channel, registry = Channel(), Registry()
    async with store() as uow:
        await uow.outbox.add("gone", b"not json")
        await uow.outbox.add("gone", Channel().pack(Channel().render([MessageSent(message(7), ("bob",))])))
        await uow.commit()
    await relay(store, channel, registry).start()
    assert channel.lasting == [7]
    assert entries(store) == []


async def test_the_lag_is_the_age_of_the_oldest_unpublished_entry_and_zero_once_caught_up(store: MemoryStore) -> None:
    channel, now = Channel(), [100.0]
    outbox = OutboxRelay(store, channel, Registry(), writer="w1", monotonic=lambda: now[0])
    await commit(outbox, store, MessageSent(message(1), ("ann", "bob")))
    assert outbox.lag() == 0.0
    channel.failing = True
    await commit(outbox, store, MessageSent(message(2), ("ann", "bob")))
    now[0] += 7.5
    await commit(outbox, store, MessageSent(message(3), ("ann", "bob")))
    assert outbox.lag() == 7.5, "from the first entry left behind, not the newest"
    with pytest.raises(Unavailable):
        await outbox._tick()  # still failing (the relay's loop logs it and tries again): still behind
    now[0] += 2.5
    assert outbox.lag() == 10.0
    channel.failing = False
    await outbox._tick()
    assert channel.lasting == [1, 2, 3]
    assert outbox.lag() == 0.0
