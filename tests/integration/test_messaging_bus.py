"""Messaging on a real bus, as the gateway drives it: commands in, deliveries out, poison handled.

Runs on the in-memory bus with SQLite (embedded mode) and on RabbitMQ with PostgreSQL (distributed
mode). Commands go straight onto the bus as the gateway would publish them; a delivery route bound to
the members' user keys observes what comes back.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from parlour.common.bus import BusMessage, MessageBus
from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.bus.memory import InMemoryMessageBus
from parlour.common.bus.policy import RetryPolicy
from parlour.common.clock import SystemClock
from parlour.common.contracts import COMMANDS, ClientCommand, CommandBatch, Delivery, user_key
from parlour.common.db import create_engine, migrate
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.common.metrics import Metrics
from parlour.common.service import Infrastructure
from parlour.messaging.application.ports import ProjectedUser
from parlour.messaging.domain.messages import CreateGroup
from parlour.messaging.service import Messaging, wire_messaging
from tests import services
from tests.harness import make_settings

WAIT = 20.0  # seconds: generous, never reached when things work
USERS = ["ann", "bob", "cat"]


@dataclass
class Observed:
    """Every frame delivered to the bound users, with the session it was meant for."""

    frames: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def take(self, message: BusMessage) -> None:
        for item in msgspec.json.decode(message.body, type=Delivery).items:
            self.frames.append((item.session_id, json.loads(bytes(item.frame))))
        self.arrived.set()

    async def wait_for(self, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        async with asyncio.timeout(WAIT):
            while not done([frame for _, frame in self.frames]):
                self.arrived.clear()
                await self.arrived.wait()
        return [frame for _, frame in self.frames]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [frame for _, frame in self.frames if frame["type"] == kind]


@dataclass
class Rig:
    bus: MessageBus
    messaging: Messaging
    observed: Observed
    chat_id: str
    users: dict[str, str]  # name -> user id, unique to the test

    async def command(self, kind: str, payload: dict[str, Any], user: str = "ann", session: str = "s-ann") -> None:
        frame = {"type": kind, **payload}
        stamped = ClientCommand(user_id=user, session_id=session, command=msgspec.Raw(json.dumps(frame).encode()))
        body = msgspec.json.encode(CommandBatch(commands=[stamped]))
        partition = user if kind == "resume" else payload.get("chat_id", user)
        await self.bus.send_command(partition, BusMessage(type=COMMANDS, body=body))

    async def send(self, client_id: str, body: str = "hello", user: str = "ann", session: str = "s-ann") -> None:
        payload = {"type": "message.send", "chat_id": self.chat_id, "client_id": client_id, "body": body}
        await self.command("message.send", payload, user, session)


async def _open_bus(impl: str, namespace: str, stack: AsyncExitStack) -> MessageBus:
    if impl == "memory":
        memory = InMemoryMessageBus(SystemClock(), policy=RetryPolicy(3, 0.02))
        stack.push_async_callback(memory.close)
        return memory
    services.require("rabbitmq")
    amqp = await AmqpMessageBus.connect(
        services.AMQP_URL, namespace=namespace, kv=InMemoryKeyValueStore(SystemClock()), clock=SystemClock(),
        policy=RetryPolicy(3, 0.02),
    )  # fmt: skip
    stack.push_async_callback(amqp.close)
    stack.push_async_callback(amqp.delete_topology)
    return amqp


@pytest.fixture(params=["memory", pytest.param("amqp", marks=[pytest.mark.rabbitmq, pytest.mark.postgres])])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """The bus implementation and the database URL to go with it (a sync fixture: the PostgreSQL one is)."""
    if request.param == "memory":
        return "memory", f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    services.require("rabbitmq")
    url: str = request.getfixturevalue("postgres_database")
    return "amqp", url


@pytest.fixture
async def rig(backend: tuple[str, str], tmp_path: Path) -> AsyncIterator[Rig]:
    impl, url = backend
    namespace = services.unique_namespace()
    settings = make_settings(tmp_path, url, namespace=namespace)
    async with AsyncExitStack() as stack:
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        await migrate(engine)
        bus = await _open_bus(impl, namespace, stack)
        http = await stack.enter_async_context(httpx.AsyncClient())
        infra = Infrastructure(
            settings, SystemClock(), Metrics(), engine, InMemoryKeyValueStore(SystemClock()), bus, http
        )
        messaging = wire_messaging(infra)
        await messaging.start(bus, stack, infra.metrics)
        observed = Observed()
        route = await bus.open_route(observed.take)
        stack.push_async_callback(route.close)
        suffix = uuid.uuid4().hex[:8]
        ids = {name: f"{name}-{suffix}" for name in USERS}
        for name, user_id in ids.items():
            await messaging.users.record(ProjectedUser(user_id, name, name))
            await route.bind(user_key(user_id))
        view = await messaging.chats.create_group(CreateGroup(ids["ann"], "Team", [ids["bob"], ids["cat"]]))
        yield Rig(bus, messaging, observed, view.chat.id, ids)


def user(rig: Rig, name: str) -> str:
    return rig.users[name]


async def test_a_sent_message_is_acked_to_its_session_and_delivered_to_every_member(rig: Rig) -> None:
    await rig.send("k1", user=user(rig, "ann"))
    await rig.observed.wait_for(lambda frames: any(f["type"] == "message.ack" for f in frames))
    (ack,) = rig.observed.of_type("message.ack")
    assert (ack["client_id"], ack["chat_id"], ack["seq"]) == ("k1", rig.chat_id, 1)
    sessions = [session for session, frame in rig.observed.frames if frame["type"] == "message.ack"]
    assert sessions == ["s-ann"]
    (new,) = rig.observed.of_type("message.new")
    assert (new["seq"], new["body"], new["sender_id"]) == (1, "hello", user(rig, "ann"))


async def test_five_sends_of_one_client_id_make_one_message_and_five_identical_acks(rig: Rig) -> None:
    await asyncio.gather(*(rig.send("same", user=user(rig, "ann")) for _ in range(5)))
    await rig.observed.wait_for(lambda frames: sum(f["type"] == "message.ack" for f in frames) == 5)
    acks = rig.observed.of_type("message.ack")
    assert all(ack == acks[0] for ack in acks)
    page = await rig.messaging.messages.history(user(rig, "bob"), rig.chat_id, after=0, before=None, limit=10)
    assert [m.seq for m in page.messages] == [1]


async def test_a_poison_command_is_parked_and_the_next_command_goes_through(rig: Rig) -> None:
    await rig.bus.send_command(rig.chat_id, BusMessage(type=COMMANDS, body=b"\x00 not a command"))
    await rig.send("after-poison", user=user(rig, "ann"))
    await rig.observed.wait_for(lambda frames: any(f["type"] == "message.ack" for f in frames))
    async with asyncio.timeout(WAIT):
        while not (parked := await rig.bus.parked()):  # noqa: ASYNC110 - the parking lot has no event to await
            await asyncio.sleep(0.02)
    assert parked[0].message.body == b"\x00 not a command"
    assert "MalformedMessage" in parked[0].error


async def test_an_invalid_command_is_answered_to_its_session_and_the_next_goes_through(rig: Rig) -> None:
    ann = user(rig, "ann")
    await rig.command("message.send", {"chat_id": rig.chat_id, "client_id": "bad"}, ann)  # no body
    await rig.command("read", {"chat_id": rig.chat_id, "seq": "high"}, ann)
    await rig.command("message.send", {"chat_id": rig.chat_id, "client_id": "big", "body": "x" * 5000}, ann)
    await rig.send("good", user=ann)
    await rig.observed.wait_for(lambda frames: any(f["type"] == "message.ack" for f in frames))
    rejected = [(f["client_id"], f["code"]) for f in rig.observed.of_type("message.rejected")]
    assert sorted(rejected) == [("bad", "command_invalid"), ("big", "message_body_invalid")]
    (error,) = rig.observed.of_type("error")
    assert (error["command"], error["code"]) == ("read", "command_invalid")
    assert rig.observed.of_type("message.ack")[0]["seq"] == 1
    assert await rig.bus.parked() == []


async def test_an_outsider_command_is_rejected_and_nothing_reaches_the_members(rig: Rig) -> None:
    await rig.send("intrude", user="mallory", session="s-mallory")
    await rig.send("legit", user=user(rig, "bob"), session="s-bob")
    await rig.observed.wait_for(lambda frames: any(f["type"] == "message.ack" for f in frames))
    assert [f["body"] for f in rig.observed.of_type("message.new")] == ["hello"]


async def test_typing_and_read_reach_the_other_members(rig: Rig) -> None:
    ann, bob = user(rig, "ann"), user(rig, "bob")
    await rig.send("k1", user=ann)
    await rig.command("typing", {"chat_id": rig.chat_id}, bob, "s-bob")
    await rig.command("read", {"chat_id": rig.chat_id, "seq": 1}, bob, "s-bob")
    frames = await rig.observed.wait_for(lambda fs: {"typing", "read"} <= {f["type"] for f in fs})
    typing = next(f for f in frames if f["type"] == "typing")
    read = next(f for f in frames if f["type"] == "read")
    assert (typing["user_id"], read["user_id"], read["seq"]) == (bob, bob, 1)


async def test_resume_answers_one_session_with_what_it_missed_then_resume_done(rig: Rig) -> None:
    ann, cat = user(rig, "ann"), user(rig, "cat")
    for index in range(4):
        await rig.send(f"k{index}", body=f"m{index}", user=ann)
    await rig.observed.wait_for(lambda frames: sum(f["type"] == "message.ack" for f in frames) == 4)
    await rig.command("resume", {"type": "resume", "chats": {rig.chat_id: 2}}, cat, "s-cat")
    await rig.observed.wait_for(lambda frames: any(f["type"] == "resume.done" for f in frames))
    answer = [frame for session, frame in rig.observed.frames if session == "s-cat"]
    assert [(f["type"], f.get("seq")) for f in answer] == [
        ("message.new", 3),
        ("message.new", 4),
        ("resume.done", None),
    ]
    assert answer[-1] == {"type": "resume.done", "chats": {rig.chat_id: 4}, "truncated": [], "removed": []}
