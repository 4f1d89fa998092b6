"""Measure messaging's group commit: send commands per second at several `max_batch` sizes.

Pre-loads N `message.send` commands for one chat onto the bus, then starts one messaging worker with the
given `max_batch` and times until the last ack is delivered. Every command is a real send: authorised,
seq assigned, stored, committed, then published as a delivery (one per batch).

    .venv/bin/python benchmarks/messaging_group_commit.py --backend memory-sqlite
    .venv/bin/python benchmarks/messaging_group_commit.py --backend amqp-postgres

Results are written down in docs/benchmarks.md ("Messaging group commit").
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import httpx
import msgspec

from parlour.common.bus import BusMessage, MessageBus
from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.bus.memory import InMemoryMessageBus
from parlour.common.clock import SystemClock
from parlour.common.contracts import COMMANDS, ClientCommand, CommandBatch, Delivery, user_key
from parlour.common.contracts.commands import SendMessage
from parlour.common.db import create_engine, migrate
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.common.logging import configure_logging
from parlour.common.metrics import Metrics
from parlour.common.service import Infrastructure
from parlour.common.settings import Settings
from parlour.messaging.application.ports import ProjectedUser
from parlour.messaging.domain.messages import CreateGroup
from parlour.messaging.service import wire_messaging

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _open_bus(backend: str, namespace: str, stack: AsyncExitStack) -> MessageBus:
    if backend.startswith("memory"):
        memory = InMemoryMessageBus(SystemClock(), queue_limit=100_000)
        stack.push_async_callback(memory.close)
        return memory
    kv = InMemoryKeyValueStore(SystemClock())
    amqp = await AmqpMessageBus.connect(AMQP_URL, namespace=namespace, kv=kv, clock=SystemClock())
    stack.push_async_callback(amqp.close)
    stack.push_async_callback(amqp.delete_topology)
    return amqp


async def _database(backend: str, folder: Path, stack: AsyncExitStack) -> str:
    if backend.endswith("sqlite"):
        return f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    name = f"parlour_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN)
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()

    stack.push_async_callback(drop)
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def run_once(backend: str, max_batch: int, count: int) -> float:
    """Commands per second for `count` sends with this `max_batch`."""
    folder = Path(tempfile.mkdtemp(prefix="parlour-bench-"))
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        url = await _database(backend, folder, stack)
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        await migrate(engine)
        bus = await _open_bus(backend, namespace, stack)
        http = await stack.enter_async_context(httpx.AsyncClient())
        settings = Settings(_env_file=None, data_dir=folder, database_url=url)
        kv = InMemoryKeyValueStore(SystemClock())
        infra = Infrastructure(settings, SystemClock(), Metrics(), engine, kv, bus, http)
        messaging = wire_messaging(infra)
        await messaging.users.record(ProjectedUser("sender", "sender", "Sender"))
        view = await messaging.chats.create_group(CreateGroup("sender", "Bench", []))
        done, acked = asyncio.Event(), 0

        async def observe(message: BusMessage) -> None:
            nonlocal acked
            for item in msgspec.json.decode(message.body, type=Delivery).items:
                acked += b'"message.ack"' in bytes(item.frame)
            if acked >= count:
                done.set()

        route = await bus.open_route(observe)
        stack.push_async_callback(route.close)
        await route.bind(user_key("sender"))
        for index in range(count):
            frame = SendMessage(chat_id=view.chat.id, client_id=f"k{index}", body=f"message {index}")
            command = ClientCommand(user_id="sender", session_id="s", command=msgspec.Raw(msgspec.json.encode(frame)))
            body = msgspec.json.encode(CommandBatch(commands=[command]))
            await bus.send_command(view.chat.id, BusMessage(type=COMMANDS, body=body))
        started = time.perf_counter()
        await messaging.start(bus, stack, infra.metrics, max_batch=max_batch)
        await asyncio.wait_for(done.wait(), 600)
        return count / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["memory-sqlite", "amqp-postgres"], default="memory-sqlite")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    configure_logging("WARNING")
    for max_batch in [int(size) for size in args.batches.split(",")]:
        rates = [await run_once(args.backend, max_batch, args.count) for _ in range(args.repeat)]
        best, median = max(rates), sorted(rates)[len(rates) // 2]
        print(f"{args.backend} max_batch={max_batch:>3}: median {median:8.0f} sends/s (best {best:.0f})")


if __name__ == "__main__":
    asyncio.run(main())
