"""A messaging worker killed between its commit and its publication loses nothing (the outbox).

Real processes on RabbitMQ, PostgreSQL and Redis: auth, one gateway and a messaging worker started with
the fault-injection setting `PARLOUR_FAULT_KILL_AFTER_COMMIT`, which makes it SIGKILL itself right after
its first commit of client work, before publishing it. A second worker, started afterwards, finds the
dead writer's outbox entries, publishes them, and removes them: every member receives every message.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from parlour.common.db import create_engine
from tests import services
from tests.clients import new_account
from tests.databases import migrate_database
from tests.processes import Deployment, distributed_env
from tests.waiting import eventually
from tests.ws_client import Client, group_chat

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def deployment(postgres_database: str, tmp_path: Path) -> Iterator[Deployment]:
    for service in ("rabbitmq", "redis"):
        services.require(service)
    namespace = services.unique_namespace()
    asyncio.run(migrate_database(postgres_database))
    deployment = Deployment(distributed_env(namespace, postgres_database, tmp_path / "data"), tmp_path)
    try:
        yield deployment
    finally:
        deployment.stack.close()
        asyncio.run(services.remove_deployment(namespace))


async def outbox_entries_naming(database_url: str, chat_id: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            payloads = (await connection.execute(text("SELECT payload FROM messaging_outbox"))).scalars().all()
    finally:
        await engine.dispose()
    return sum(chat_id.encode() in bytes(payload) for payload in payloads)


async def test_a_worker_killed_after_its_commit_loses_no_message_and_leaves_no_outbox_entry(
    deployment: Deployment, postgres_database: str
) -> None:
    auth_url = deployment.start("auth", "auth")
    messaging_url = deployment.start("m1", "messaging")
    gateway_url = deployment.start("gateway", "gateway")
    async with (
        httpx.AsyncClient(base_url=auth_url, timeout=20) as auth,
        httpx.AsyncClient(base_url=messaging_url, timeout=20) as messaging,
        httpx.AsyncClient(base_url=gateway_url, timeout=20) as gateway,
    ):
        ada, bob, cy = [await new_account(auth, name) for name in ("ada", "bob", "cy")]
        chat_id = await group_chat(messaging, ada, [bob, cy], "crash")
        members = [await Client.connect(gateway, account) for account in (bob, cy)]
        sender = await Client.connect(gateway, ada)

    deployment.stop("m1")
    deployment.start("doomed", "messaging", PARLOUR_FAULT_KILL_AFTER_COMMIT="true")
    sent = [await sender.send_message(chat_id, f"m{i}") for i in range(5)]
    assert await deployment.exit_code("doomed") == -signal.SIGKILL, "it died at the fault-injection point"
    assert await outbox_entries_naming(postgres_database, chat_id) >= 1, "its commit left an unpublished entry"

    deployment.start("survivor", "messaging")
    acks = [await sender.expect("message.ack", client_id=client_id, within=60) for client_id in sent]
    assert [ack["seq"] for ack in acks] == [1, 2, 3, 4, 5]
    for member in members:
        # The dead worker's commit reaches the members when its entry is swept, which may be after the
        # survivor's newer messages: a client fills the gap by `seq` (docs/subsystems/outbox.md, case 1).
        frames = await member.messages(chat_id, 5, 60)
        assert sorted((f["seq"], f["body"]) for f in frames) == [(i + 1, f"m{i}") for i in range(5)]
        await member.send({"type": "ping", "id": "after"})
        tail = await member.until(lambda frame: frame["type"] == "pong")
        assert not [f for f in tail if f["type"] == "message.new"], "each message reached each member once"
    for client in (*members, sender):
        await client.close()
    await eventually(lambda: _outbox_clear(postgres_database, chat_id), within=30, what="an empty outbox")


async def _outbox_clear(database_url: str, chat_id: str) -> bool:
    return await outbox_entries_naming(database_url, chat_id) == 0
