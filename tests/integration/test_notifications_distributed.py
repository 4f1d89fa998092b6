"""Notifications in distributed mode: real `parlour serve` processes on RabbitMQ, PostgreSQL and Redis,
a webhook receiver of the test's as each member's webhook, and a notifications process SIGKILLed while
a notification waits for its due time (docs/subsystems/notifications.md, case 7).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import services
from tests.clients import Account
from tests.databases import migrate_database
from tests.notifications import (
    WebhookReceiver,
    add_webhook,
    mute,
    named_account,
    read_up_to,
    send,
    webhook_receiver,
)
from tests.presence import seen_as, snapshot
from tests.processes import Deployment, distributed_env
from tests.waiting import eventually
from tests.ws_client import Client, group_chat

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

DELAY, WINDOW = 3.0, 4.0


@pytest.fixture(scope="module")
def deployment(module_postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    for service in ("rabbitmq", "redis"):
        services.require(service)
    namespace = services.unique_namespace()
    cwd = tmp_path_factory.mktemp("notifications-cluster")
    asyncio.run(migrate_database(module_postgres_database))
    env = distributed_env(
        namespace,
        module_postgres_database,
        cwd / "data",
        PARLOUR_NOTIFICATIONS_DELAY_SECONDS=str(DELAY),
        PARLOUR_NOTIFICATIONS_WINDOW_SECONDS=str(WINDOW),
        PARLOUR_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS="1",
    )
    deployment = Deployment(env, Path(cwd))
    try:
        for name in ("auth", "messaging", "presence", "notifications"):
            deployment.start(name, name)
        deployment.start("g1", "gateway")
        yield deployment
    finally:
        deployment.stack.close()
        asyncio.run(services.remove_deployment(namespace))


@dataclass
class Cluster:
    deployment: Deployment
    auth: httpx.AsyncClient
    messaging: httpx.AsyncClient
    gateway: httpx.AsyncClient
    receiver: WebhookReceiver
    receiver_url: str

    async def member(self, name: str) -> Account:
        account = await named_account(self.auth, name.capitalize())
        async with self.notifications as client:
            await add_webhook(client, account, f"{self.receiver_url}/{name}")
        return account

    @property
    def notifications(self) -> httpx.AsyncClient:
        """A new client of the notifications process (it moves when restarted)."""
        return httpx.AsyncClient(base_url=self.deployment.urls["notifications"], timeout=20)

    async def noted(self) -> float:
        """`parlour_notifications_noted_total` on the notifications process's /metrics."""
        async with self.notifications as client:
            text = (await client.get("/metrics")).text
        found = re.search(r"^parlour_notifications_noted_total (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0


@pytest.fixture
async def cluster(deployment: Deployment) -> AsyncIterator[Cluster]:
    urls = deployment.urls
    async with (
        webhook_receiver() as (receiver, receiver_url),
        httpx.AsyncClient(base_url=urls["auth"], timeout=20) as auth,
        httpx.AsyncClient(base_url=urls["messaging"], timeout=20) as messaging,
        httpx.AsyncClient(base_url=urls["g1"], timeout=20) as gateway,
    ):
        yield Cluster(deployment, auth, messaging, gateway, receiver, receiver_url)


async def test_across_processes_an_offline_member_is_told_once_and_an_online_one_is_not(cluster: Cluster) -> None:
    ada, bob, cy = [await cluster.member(name) for name in ("ada", "bob", "cy")]
    chat_id = await group_chat(cluster.messaging, ada, [bob, cy], title="Team")
    watcher = await Client.connect(cluster.gateway, ada, presence=True)
    await snapshot(watcher)
    online = await Client.connect(cluster.gateway, cy)
    await seen_as(watcher, cy.user_id, "online")
    await send(cluster.messaging, ada, chat_id, "one")
    last = await send(cluster.messaging, ada, chat_id, "two")
    (told,) = await cluster.receiver.wait("/bob", within=30.0)
    assert (told.json()["data"]["count"], told.json()["data"]["last_seq"]) == (2, last)
    assert told.json()["data"]["title"] == "2 new messages from Ada in Team"
    assert cluster.receiver.at("/cy") == [], "online: not told"
    assert cluster.receiver.at("/ada") == [], "the sender: not told"
    await watcher.close()
    await online.close()


async def test_across_processes_the_away_are_told_and_a_muter_and_a_reader_in_time_are_not(cluster: Cluster) -> None:
    ada, bob, cy, dee, fay = [await cluster.member(name) for name in ("ada", "bob", "cy", "dee", "fay")]
    chat_id = await group_chat(cluster.messaging, ada, [bob, cy, dee, fay], title="Team")
    async with cluster.notifications as client:
        assert (await mute(client, cy, chat_id)).status_code == 200
    watcher = await Client.connect(cluster.gateway, ada, presence=True)
    await snapshot(watcher)
    away = await Client.connect(cluster.gateway, bob)
    await away.send({"type": "activity", "state": "idle"})
    await seen_as(watcher, bob.user_id, "away")
    seq = await send(cluster.messaging, ada, chat_id, "anyone?")
    await read_up_to(cluster.messaging, dee, chat_id, seq)
    (offline,) = await cluster.receiver.wait("/fay", within=30.0)
    (idle,) = await cluster.receiver.wait("/bob", within=30.0)
    assert offline.json()["data"]["last_seq"] == idle.json()["data"]["last_seq"] == seq
    for name in ("ada", "cy", "dee"):
        assert cluster.receiver.at(f"/{name}") == [], f"{name} is not told"
    await watcher.close()
    await away.close()


async def test_a_notifications_process_killed_while_a_notification_waits_loses_nothing(cluster: Cluster) -> None:
    ada, bob = await cluster.member("ada"), await cluster.member("bob")
    chat_id = await group_chat(cluster.messaging, ada, [bob], title="Team")
    before = await cluster.noted()
    last = await send(cluster.messaging, ada, chat_id, "still there?")

    async def noted() -> bool:
        return await cluster.noted() > before

    # Noted (written, then acked) well before it is due: a child process's state, so polled.
    await eventually(noted, within=DELAY, what="the message noted for bob")
    cluster.deployment.kill("notifications")  # SIGKILL: no drain, nothing flushed
    assert cluster.receiver.at("/bob") == [], "killed before it was due"
    await asyncio.to_thread(cluster.deployment.start, "notifications", "notifications")
    (told,) = await cluster.receiver.wait("/bob", within=30.0)
    assert told.json()["data"]["last_seq"] == last
    assert told.headers["webhook-id"] == f"{chat_id}:{bob.user_id}:{last}"
