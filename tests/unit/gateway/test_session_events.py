"""The gateway's session events: published in batches on `session.events`, in order, each opening
returning once its batch is on the bus."""

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
from parlour.common.errors import Unavailable
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
        await asyncio.gather(*(events.opened(session(n)) for n in range(100)))
        await events.closed(session(7))
        async with asyncio.timeout(5):
            while len(published.events()) < 101:
                published.arrived.clear()
                await published.arrived.wait()
        assert published.events() == [("opened", f"s{n}") for n in range(100)] + [("closed", "s7")]
        assert len(published.messages) <= 3, "the first opening alone, then every other one together, then the close"
        assert {event.gateway_id for batch in published.messages for event in batch.events} == {"g1"}
    finally:
        await tasks.cancel_all()


async def test_who_waits_when_the_publisher_stops_is_told_it_failed_and_so_is_who_comes_after(
    bus: InMemoryMessageBus,
) -> None:
    events = BusSessionEvents(bus, "g1", ManualClock())
    tasks = TaskSet()
    flusher = tasks.spawn(events.run(), name="session_events")
    await asyncio.sleep(0)  # the flusher waits for work
    waiting = asyncio.ensure_future(events.opened(session(1)))
    await asyncio.sleep(0)  # the opening waits; the flusher is woken but has not run yet
    flusher.cancel()
    await tasks.cancel_all()
    assert flusher.cancelled()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(ConnectionError):
        await events.closed(session(1))


async def test_a_publication_that_fails_fails_each_of_its_openings(bus: InMemoryMessageBus) -> None:
    events = BusSessionEvents(bus, "g1", ManualClock())
    tasks = TaskSet()
    tasks.spawn(events.run(), name="session_events")
    await bus.close()  # publishing now raises
    try:
        with pytest.raises(Unavailable):
            await asyncio.wait_for(events.opened(session(1)), 5)
    finally:
        await tasks.cancel_all()
