"""Publish→consume throughput and latency of the message bus, with publisher confirms.

    .venv/bin/python -m benchmarks.bus_throughput --impl amqp --messages 20000
    .venv/bin/python -m benchmarks.bus_throughput --impl memory --messages 20000

Two kinds of traffic, each measured twice, publisher and consumer in one process:

* commands: `send_command` to `--chats` partition keys, consumed by one worker (`consume_commands`,
  batches of up to `--batch`);
* events: `publish` of events carrying `--keys` user keys each, consumed by one delivery route holding
  all of them (one copy per event);
* "load": `--messages` messages from `--concurrency` publisher tasks as fast as confirms allow: the
  throughput, and the latency under that load (it includes the time queued behind the other publishers);
* "lockstep": `--lockstep` messages one at a time, each published only once the previous one arrived:
  the unloaded latency.

Latency runs from just before the publish call (which returns once the broker confirmed) to the handler
receiving the message, on one clock.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import msgspec

from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.bus.memory import InMemoryMessageBus
from parlour.common.bus.port import BusMessage, MessageBus
from parlour.common.clock import SystemClock
from parlour.common.kv.memory import InMemoryKeyValueStore


@dataclass
class Result:
    """One run's figures."""

    kind: str
    messages: int
    seconds: float
    latencies: list[float]

    def line(self) -> str:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rate = self.messages / self.seconds
        return f"{self.kind:<18} {self.messages:>6} msgs {rate:>9,.0f} msg/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"


class Receiver:
    """Records the latency of every message it is handed, and says when all have arrived."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.expected = 0
        self.done = asyncio.Event()
        self.arrived: asyncio.Queue[None] = asyncio.Queue()
        self.last = 0.0

    def expect(self, count: int) -> None:
        self.latencies, self.expected, self.last = [], count, 0.0
        self.done.clear()

    async def take(self, message: BusMessage) -> None:
        now = time.perf_counter()
        self.latencies.append(now - msgspec.msgpack.decode(message.body))
        self.last = now
        self.arrived.put_nowait(None)
        if len(self.latencies) >= self.expected:
            self.done.set()

    async def take_batch(self, messages: Sequence[BusMessage]) -> None:
        for message in messages:
            await self.take(message)


Send = Callable[[int, BusMessage], Awaitable[None]]


def stamped() -> BusMessage:
    return BusMessage("bench", msgspec.msgpack.encode(time.perf_counter()))


async def under_load(kind: str, receiver: Receiver, send: Send, count: int, concurrency: int) -> Result:
    """`count` messages from `concurrency` publisher tasks at once."""
    receiver.expect(count)
    counter = iter(range(count))

    async def publisher() -> None:
        for n in counter:
            await send(n, stamped())

    started = time.perf_counter()
    await asyncio.gather(*(publisher() for _ in range(concurrency)))
    await asyncio.wait_for(receiver.done.wait(), 300)
    return Result(f"{kind}/load", count, receiver.last - started, receiver.latencies)


async def in_lockstep(kind: str, receiver: Receiver, send: Send, count: int) -> Result:
    """`count` messages, each sent once the previous one arrived."""
    receiver.expect(count)
    started = time.perf_counter()
    for n in range(count):
        await send(n, stamped())
        await asyncio.wait_for(receiver.arrived.get(), 30)
    return Result(f"{kind}/lockstep", count, receiver.last - started, receiver.latencies)


async def bench_commands(bus: MessageBus, args: argparse.Namespace) -> list[Result]:
    receiver = Receiver()
    subscription = await bus.consume_commands(receiver.take_batch, max_batch=args.batch)
    chats = [f"chat-{n}" for n in range(args.chats)]

    async def send(n: int, message: BusMessage) -> None:
        await bus.send_command(chats[n % len(chats)], message)

    results = [await under_load("commands", receiver, send, args.messages, args.concurrency)]
    receiver.arrived = asyncio.Queue()
    results.append(await in_lockstep("commands", receiver, send, args.lockstep))
    await subscription.close()
    return results


async def bench_events(bus: MessageBus, args: argparse.Namespace) -> list[Result]:
    receiver = Receiver()
    route = await bus.open_route(receiver.take)
    keys = [f"user.{n}" for n in range(args.keys)]
    for key in keys:
        await route.bind(key)

    async def send(n: int, message: BusMessage) -> None:
        await bus.publish(keys, message)

    results = [await under_load("events", receiver, send, args.messages, args.concurrency)]
    receiver.arrived = asyncio.Queue()
    results.append(await in_lockstep("events", receiver, send, args.lockstep))
    await route.close()
    return results


async def main(args: argparse.Namespace) -> None:
    clock = SystemClock()
    bus: MessageBus
    if args.impl == "memory":
        bus = InMemoryMessageBus(clock, queue_limit=max(10_000, args.messages))
    else:
        kv = InMemoryKeyValueStore(clock)
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        bus = await AmqpMessageBus.connect(args.url, namespace=namespace, kv=kv, clock=clock, prefetch=args.prefetch)
    try:
        print(f"impl={args.impl} concurrency={args.concurrency} batch={args.batch} keys/event={args.keys}")
        for result in [*await bench_commands(bus, args), *await bench_events(bus, args)]:
            print(result.line())
    finally:
        if isinstance(bus, AmqpMessageBus):
            await bus.delete_topology()
        await bus.close()


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", choices=["memory", "amqp"], default="memory")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent publisher tasks")
    parser.add_argument("--lockstep", type=int, default=1000, help="messages sent one at a time")
    parser.add_argument("--chats", type=int, default=256, help="partition keys the commands spread over")
    parser.add_argument("--batch", type=int, default=32, help="max_batch of the command consumer")
    parser.add_argument("--keys", type=int, default=10, help="user keys each event carries")
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
