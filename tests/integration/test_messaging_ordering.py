"""Ordering under concurrency in distributed mode: 4 senders x 500 messages to one group, on RabbitMQ and
PostgreSQL, through two messaging processes, with the chat's partition moving between them mid-stream.

Real OS processes (`python -m parlour serve ...`) in a namespace unique to this test, on this run's
PostgreSQL database. The test publishes client commands straight onto the bus as the gateway would, and
observes the deliveries on a route bound to the members' user keys. The partition moves twice: when the
second worker joins (the assignment may hand it over) and when the first one stops (it must).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from parlour.common.bus import BusMessage
from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.clock import SystemClock
from parlour.common.contracts import COMMANDS, ClientCommand, CommandBatch, Delivery, user_key
from parlour.common.kv.memory import InMemoryKeyValueStore
from tests import services
from tests.clients import Account, new_account
from tests.databases import migrate_database
from tests.processes import distributed_env, free_port, parlour_process

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SENDERS = 4
PER_SENDER = 500
TOTAL = SENDERS * PER_SENDER
WAIT = 120.0  # seconds for a phase: generous, never reached when things work


@dataclass
class Cluster:
    """The processes of one distributed deployment, and how to start and stop messaging workers."""

    env: dict[str, str]
    cwd: Path
    stack: ExitStack
    auth_url: str
    workers: dict[str, tuple[ExitStack, str]] = field(default_factory=dict)

    def start(self, name: str, service: str = "messaging") -> str:
        port = free_port()
        env = {**self.env, "PARLOUR_PORT": str(port)}
        worker = ExitStack()
        worker.enter_context(parlour_process("serve", service, env=env, cwd=self.cwd, port=port))
        self.workers[name] = (worker, f"http://127.0.0.1:{port}")
        return f"http://127.0.0.1:{port}"

    def stop(self, name: str) -> None:
        worker, _ = self.workers.pop(name)
        worker.close()

    def url(self, name: str) -> str:
        return self.workers[name][1]


@pytest.fixture
def cluster(postgres_database: str, tmp_path: Path) -> Iterator[Cluster]:
    for service in ("rabbitmq", "redis"):
        services.require(service)
    namespace = services.unique_namespace()
    env = distributed_env(namespace, postgres_database, tmp_path / "data")
    asyncio.run(migrate_database(postgres_database))
    with ExitStack() as stack:
        auth = Cluster(env, tmp_path, stack, "")
        auth_url = auth.start("auth", "auth")
        cluster = Cluster({**env, "PARLOUR_AUTH_URL": auth_url}, tmp_path, stack, auth_url, auth.workers)
        try:
            yield cluster
        finally:
            for name in list(cluster.workers):
                cluster.stop(name)
            asyncio.run(services.remove_deployment(namespace))


class Acks:
    """The acks and message.new frames seen on the route, with a way to wait for a count of acks."""

    def __init__(self) -> None:
        self.acked: dict[str, int] = {}  # client_id -> seq (a redelivered command acks again, alike)
        self.delivered: set[int] = set()
        self.mismatched: list[tuple[str, int, int]] = []
        self._arrived = asyncio.Event()

    async def take(self, message: BusMessage) -> None:
        for item in msgspec.json.decode(message.body, type=Delivery).items:
            frame = json.loads(bytes(item.frame))
            if frame["type"] == "message.ack":
                seen = self.acked.setdefault(frame["client_id"], frame["seq"])
                if seen != frame["seq"]:
                    self.mismatched.append((frame["client_id"], seen, frame["seq"]))
            elif frame["type"] == "message.new":
                self.delivered.add(frame["seq"])
        self._arrived.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.acked) < count:
                self._arrived.clear()
                await self._arrived.wait()


@pytest.fixture
async def bus(cluster: Cluster) -> AsyncIterator[AmqpMessageBus]:
    bus = await AmqpMessageBus.connect(
        services.AMQP_URL,
        namespace=cluster.env["PARLOUR_NAMESPACE"],
        kv=InMemoryKeyValueStore(SystemClock()),
        clock=SystemClock(),
    )
    yield bus
    await bus.close()


BATCH = 7  # commands per bus message, as a gateway flush packs them (odd, so batches straddle phases)


async def _publish(bus: AmqpMessageBus, chat_id: str, sender: Account, indexes: range) -> None:
    # One sender's commands in order, several per bus message, as the gateway's batcher publishes them.
    for start in range(indexes.start, indexes.stop, BATCH):
        commands = [
            ClientCommand(
                user_id=sender.user_id,
                session_id=f"session-{sender.user_id}",
                command=msgspec.Raw(
                    json.dumps(
                        {
                            "type": "message.send",
                            "chat_id": chat_id,
                            "client_id": f"{sender.user_id}:{index}",
                            "body": f"{index}",
                        }
                    ).encode()
                ),
            )
            for index in range(start, min(start + BATCH, indexes.stop))
        ]
        body = msgspec.json.encode(CommandBatch(commands=commands))
        await bus.send_command(chat_id, BusMessage(type=COMMANDS, body=body))


async def _phase(bus: AmqpMessageBus, chat_id: str, senders: list[Account], indexes: range) -> None:
    await asyncio.gather(*(_publish(bus, chat_id, sender, indexes) for sender in senders))


async def _history(base_url: str, account: Account, chat_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        while True:
            after = items[-1]["seq"] if items else 0
            params = {"after_seq": after, "limit": 200}
            response = await http.get(f"/api/chats/{chat_id}/messages", params=params, headers=account.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            items += page["items"]
            if not page["has_more"]:
                return items


async def _commands_processed(base_url: str) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    pattern = r'^parlour_messaging_commands_total\{type="message\.send"\} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


async def test_four_senders_through_two_moving_workers_get_one_gapless_order(
    cluster: Cluster, bus: AmqpMessageBus
) -> None:
    first = await asyncio.to_thread(cluster.start, "first")
    async with httpx.AsyncClient(base_url=cluster.auth_url, timeout=30) as auth:
        senders = [await new_account(auth) for _ in range(SENDERS)]
    async with httpx.AsyncClient(base_url=first, timeout=30) as http:
        body = {"kind": "group", "title": "Ordering", "member_ids": [s.user_id for s in senders[1:]]}
        created = await http.post("/api/chats", json=body, headers=senders[0].headers)
    assert created.status_code == 201, created.text
    chat_id = created.json()["id"]
    acks = Acks()
    route = await bus.open_route(acks.take)
    for sender in senders:
        await route.bind(user_key(sender.user_id))

    await _phase(bus, chat_id, senders, range(0, 150))
    await acks.wait_for(SENDERS * 150)
    second = await asyncio.to_thread(cluster.start, "second")  # the assignment may move the partition
    await _phase(bus, chat_id, senders, range(150, 300))
    await acks.wait_for(SENDERS * 300)
    by_first = await _commands_processed(first)
    stopping = asyncio.create_task(asyncio.to_thread(cluster.stop, "first"))  # the partition must move
    await _phase(bus, chat_id, senders, range(300, 400))
    await stopping
    # Batched, the commands sent while the first worker stops may all reach it before it goes: what is sent
    # once it has gone can only reach the second.
    await _phase(bus, chat_id, senders, range(400, PER_SENDER))
    await acks.wait_for(TOTAL)
    by_second = await _commands_processed(second)
    await route.close()

    assert acks.mismatched == []
    assert sorted(acks.acked.values()) == list(range(1, TOTAL + 1))
    assert acks.delivered == set(range(1, TOTAL + 1))
    assert by_first > 0
    assert by_second > 0
    histories = [await _history(second, sender, chat_id) for sender in senders]
    assert all(history == histories[0] for history in histories)
    assert [m["seq"] for m in histories[0]] == list(range(1, TOTAL + 1))
    for sender in senders:  # each sender's messages keep the order it sent them in
        own = [int(m["body"]) for m in histories[0] if m["sender_id"] == sender.user_id]
        assert own == list(range(PER_SENDER))
