"""The gateway's session events: queued at once, published in batches on `session.events` in order, each
event's future settled once its batch is on the bus (True) or could not be (False, never an exception)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import msgspec
import pytest

from parlour.common.bus import BusMessage
from parlour.common.bus.background import TaskSet
from parlour.common.bus.memory import InMemoryMessageBus
from parlour.common.clock import ManualClock
from parlour.common.contracts import SESSION_EVENTS, SessionEvents
from parlour.gateway.adapters.bus import BusSessionEvents
from parlour.gateway.domain.session import Session, SessionLimits


def session(number: int) -> Session:
    return Session(f"s{number}", f"u{number}", SessionLimits(), now=0.0)


class Published:
    def __init__(self) -> None:
        self.messages: list[SessionEvents] = []
        self.arrived = asyncio.Event()

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        self.messages.extend(msgspec.json.decode(m.body, type=SessionEvents) for m in messages)
        self.arrived.set()

    def events(self) -> list[tuple[str, str]]:
        return [(event.kind, event.session_id) for batch in self.messages for event in batch.events]


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryMessageBus]:
    bus = InMemoryMessageBus(ManualClock())
    yield bus
    await bus.close()


async def test_openings_at_once_leave_in_few_bus_messages_in_order(bus: InMemoryMessageBus) -> None:
    published = Published()
    await bus.subscribe("presence.sessions", [SESSION_EVENTS], published, max_batch=1_000)
    events = BusSessionEvents(bus, "g1", ManualClock())
    tasks = TaskSet()
    tasks.spawn(events.run(), name="session_events")
    try:
        assert await asyncio.gather(*(events.opened(session(n)) for n in range(100))) == [True] * 100
        assert await events.closed(session(7)) is True
        async with asyncio.timeout(5):
            while len(published.events()) < 101:
                published.arrived.clear()
                await published.arrived.wait()
        assert published.events() == [("opened", f"s{n}") for n in range(100)] + [("closed", "s7")]
        assert len(published.messages) <= 3, "the first opening alone, then every other one together, then the close"
        assert {event.gateway_id for batch in published.messages for event in batch.events} == {"g1"}
    finally:
        await tasks.cancel_all()


async def test_an_event_is_queued_at_once_and_its_future_settles_when_its_batch_is_out(
    bus: InMemoryMessageBus,
) -> None:
    published = Published()
    await bus.subscribe("presence.sessions", [SESSION_EVENTS], published, max_batch=1_000)
    events = BusSessionEvents(bus, "g1", ManualClock())
    opening = events.opened(session(1))  # no flusher yet: queued, not out
    closing = events.closed(session(1))
    assert (opening.done(), closing.done()) == (False, False)
    tasks = TaskSet()
    tasks.spawn(events.run(), name="session_events")
    try:
        assert await asyncio.wait_for(opening, 5) is True
        assert await asyncio.wait_for(closing, 5) is True
        async with asyncio.timeout(5):
            while len(published.events()) < 2:
                published.arrived.clear()
                await published.arrived.wait()
        assert published.events() == [("opened", "s1"), ("closed", "s1")]
    finally:
        await tasks.cancel_all()


async def test_what_waits_when_the_publisher_stops_is_not_out_and_neither_is_what_comes_after(
    bus: InMemoryMessageBus,
) -> None:
    events = BusSessionEvents(bus, "g1", ManualClock())
    tasks = TaskSet()
    flusher = tasks.spawn(events.run(), name="session_events")
    await asyncio.sleep(0)  # the flusher waits for work
    waiting = events.opened(session(1))
    flusher.cancel()  # woken, but cancelled before it could run
    await tasks.cancel_all()
    assert flusher.cancelled()
    assert await asyncio.wait_for(waiting, 5) is False
    assert await asyncio.wait_for(events.closed(session(1)), 5) is False


async def test_a_publication_that_fails_settles_each_of_its_events_as_not_out(bus: InMemoryMessageBus) -> None:
    events = BusSessionEvents(bus, "g1", ManualClock())
    tasks = TaskSet()
    tasks.spawn(events.run(), name="session_events")
    await bus.close()  # publishing now raises
    try:
        assert await asyncio.wait_for(events.opened(session(1)), 5) is False
    finally:
        await tasks.cancel_all()
