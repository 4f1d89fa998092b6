"""What only the in-memory bus promises: bounded queues everywhere, and a clean shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from parlour.common.bus.memory import InMemoryMessageBus
from parlour.common.bus.port import BusMessage, MalformedMessage
from parlour.common.clock import ManualClock
from parlour.common.errors import Unavailable


def message(body: str) -> BusMessage:
    return BusMessage("test", body.encode())


async def test_a_full_partition_makes_the_sender_wait_then_fail_instead_of_growing() -> None:
    bus = InMemoryMessageBus(ManualClock(), partitions=1, queue_limit=2, publish_timeout=0.05)
    await bus.send_command("chat", message("1"))
    await bus.send_command("chat", message("2"))
    with pytest.raises(Unavailable, match="full"):
        await bus.send_command("chat", message("3"))
    await bus.close()


async def test_a_waiting_sender_goes_through_once_the_consumer_makes_room() -> None:
    bus = InMemoryMessageBus(ManualClock(), partitions=1, queue_limit=1, publish_timeout=30)
    await bus.send_command("chat", message("1"))
    waiting = asyncio.create_task(bus.send_command("chat", message("2")))
    _, pending = await asyncio.wait({waiting}, timeout=0.01)
    assert pending == {waiting}
    received: list[bytes] = []
    done = asyncio.Event()

    async def handle(messages: Sequence[BusMessage]) -> None:
        received.extend(m.body for m in messages)
        if len(received) == 2:
            done.set()

    await bus.consume_commands(handle)
    async with asyncio.timeout(10):
        await waiting
        await done.wait()
    assert received == [b"1", b"2"]
    await bus.close()


async def test_the_parking_lot_is_bounded_and_keeps_the_newest() -> None:
    bus = InMemoryMessageBus(ManualClock(), partitions=1, queue_limit=3)
    parked = asyncio.Event()

    async def reject(messages: Sequence[BusMessage]) -> None:
        if messages[0].body == b"4":
            parked.set()
        raise MalformedMessage()

    await bus.consume_commands(reject)
    for n in range(5):
        await bus.send_command("chat", message(str(n)))
    async with asyncio.timeout(10):
        await parked.wait()
    assert [entry.message.body for entry in await bus.parked()] == [b"2", b"3", b"4"]
    await bus.close()


async def test_an_event_nobody_holds_is_not_an_error() -> None:
    bus = InMemoryMessageBus(ManualClock())
    await bus.publish(["user.offline"], message("hello"))
    await bus.publish([], message("nobody"))
    await bus.close()


async def test_a_closed_bus_refuses_work_and_fails_its_readiness() -> None:
    bus = InMemoryMessageBus(ManualClock())
    route = await bus.open_route(lambda m: asyncio.sleep(0))
    await route.bind("user.1")
    await bus.close()
    with pytest.raises(Unavailable):
        await bus.ping()
    with pytest.raises(Unavailable):
        await bus.send_command("chat", message("late"))
