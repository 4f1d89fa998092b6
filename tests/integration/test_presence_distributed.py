"""Presence in distributed mode: real `parlour serve` processes on RabbitMQ, PostgreSQL and Redis.

auth, messaging, presence and two gateways (leases of `LEASE_SECONDS`, so a killed gateway is noticed
in seconds, not the default 30), and for the crash cases gateways started and SIGKILLed by the test.
Clients are real WebSocket clients; B's devices sit on different gateways than A.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import services
from tests.clients import assert_problem, new_account
from tests.databases import migrate_database
from tests.presence import entry_of, known_as_contacts, look_up, seen_as, shows, snapshot
from tests.processes import Deployment, distributed_env
from tests.ws_client import Client, direct_chat, group_chat

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

LEASE_SECONDS = 3.0
# The bound for a killed gateway, whatever the lease (the default lease is 30 s).
KILLED_OFFLINE_WITHIN = 35.0
PING_INTERVAL, PING_TIMEOUT = 1.0, 1.0


@pytest.fixture(scope="module")
def deployment(module_postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    for service in ("rabbitmq", "redis"):
        services.require(service)
    namespace = services.unique_namespace()
    cwd = tmp_path_factory.mktemp("presence-cluster")
    asyncio.run(migrate_database(module_postgres_database))
    env = distributed_env(
        namespace, module_postgres_database, cwd / "data", PARLOUR_GATEWAY_LEASE_TTL_SECONDS=str(LEASE_SECONDS)
    )
    deployment = Deployment(env, Path(cwd))
    try:
        for name in ("auth", "messaging", "presence"):
            deployment.start(name, name)
        deployment.start("g1", "gateway")
        deployment.start("g2", "gateway")
        yield deployment
    finally:
        deployment.stack.close()
        asyncio.run(services.remove_deployment(namespace))


@dataclass
class Clients:
    auth: httpx.AsyncClient
    messaging: httpx.AsyncClient
    presence: httpx.AsyncClient
    g1: httpx.AsyncClient
    g2: httpx.AsyncClient


@pytest.fixture
async def http(deployment: Deployment) -> AsyncIterator[Clients]:
    urls = deployment.urls
    async with (
        httpx.AsyncClient(base_url=urls["auth"], timeout=20) as auth,
        httpx.AsyncClient(base_url=urls["messaging"], timeout=20) as messaging,
        httpx.AsyncClient(base_url=urls["presence"], timeout=20) as presence,
        httpx.AsyncClient(base_url=urls["g1"], timeout=20) as g1,
        httpx.AsyncClient(base_url=urls["g2"], timeout=20) as g2,
    ):
        yield Clients(auth, messaging, presence, g1, g2)


async def test_across_gateways_a_contact_goes_online_away_and_offline_and_two_devices_stay_online(
    http: Clients,
) -> None:
    alice, bob = await new_account(http.auth, "a"), await new_account(http.auth, "b")
    await direct_chat(http.messaging, alice, bob)
    await known_as_contacts(http.presence, alice, bob.user_id)
    a = await Client.connect(http.g1, alice, presence=True)
    assert (await snapshot(a))[bob.user_id]["status"] == "offline"

    connected_at = time.monotonic()
    phone = await Client.connect(http.g2, bob, presence=True)
    await seen_as(a, bob.user_id, "online", within=2.0)
    assert time.monotonic() - connected_at <= 2.0
    laptop = await Client.connect(http.g1, bob, presence=True)
    await phone.close()
    await laptop.send({"type": "activity", "state": "idle"})
    frames = await a.until(lambda frame: shows(frame, bob.user_id, "away"))
    assert not [f for f in frames if shows(f, bob.user_id, "offline")], "one device left: never offline"

    phone = await Client.connect(http.g2, bob, presence=True)
    await seen_as(a, bob.user_id, "online")
    await phone.send({"type": "activity", "state": "idle"})
    await seen_as(a, bob.user_id, "away")
    await phone.close()
    await laptop.close()
    gone = await seen_as(a, bob.user_id, "offline", within=2.0)
    assert gone["last_seen"] is not None
    assert (await look_up(http.presence, alice, bob.user_id)).json() == {"users": [gone]}
    await a.close()


async def test_someone_who_shares_no_chat_hears_nothing_and_is_refused_over_rest(http: Clients) -> None:
    alice, bob, carol = [await new_account(http.auth, name) for name in "abc"]
    await direct_chat(http.messaging, alice, bob)
    await group_chat(http.messaging, carol, [alice])
    await known_as_contacts(http.presence, alice, bob.user_id, carol.user_id)
    c = await Client.connect(http.g2, carol, presence=True)
    a = await Client.connect(http.g1, alice, presence=True)
    assert bob.user_id not in await snapshot(c)
    await snapshot(a)
    b = await Client.connect(http.g2, bob, presence=True)
    await seen_as(a, bob.user_id, "online")
    await a.close()
    frames = await c.until(lambda frame: shows(frame, alice.user_id, "offline"))
    assert not [f for f in frames if entry_of(f, bob.user_id)], "carol heard nothing of bob"
    assert_problem(await look_up(http.presence, carol, bob.user_id), 404, "user_not_found")
    assert_problem(await look_up(http.presence, carol, "no-such-user"), 404, "user_not_found")

    hidden = await http.presence.put("/api/presence/settings", json={"hidden": True}, headers=alice.headers)
    assert hidden.json() == {"hidden": True}
    assert (await look_up(http.presence, bob, alice.user_id)).json()["users"] == [
        {"user_id": alice.user_id, "status": "offline", "last_seen": None}
    ]
    await b.close()
    await c.close()


async def test_a_gateway_killed_with_sigkill_takes_its_sessions_offline_within_the_lease(
    deployment: Deployment, http: Clients
) -> None:
    alice, bob = await new_account(http.auth, "a"), await new_account(http.auth, "b")
    await direct_chat(http.messaging, alice, bob)
    a = await Client.connect(http.g1, alice, presence=True)
    await snapshot(a)
    async with httpx.AsyncClient(base_url=deployment.start("doomed", "gateway"), timeout=20) as doomed:
        b = await Client.connect(doomed, bob, presence=True)
    await seen_as(a, bob.user_id, "online")

    deployment.kill("doomed")
    killed_at = time.monotonic()
    gone = await seen_as(a, bob.user_id, "offline", within=KILLED_OFFLINE_WITHIN)
    elapsed = time.monotonic() - killed_at
    assert elapsed <= KILLED_OFFLINE_WITHIN
    assert elapsed <= LEASE_SECONDS + 3.0, f"offline {elapsed:.1f} s after the kill, with a {LEASE_SECONDS} s lease"
    assert gone["last_seen"] is not None
    assert (await b.closed())[0] is None, "a killed gateway sends no close frame"
    await a.close()


async def test_a_client_that_stops_answering_pings_goes_offline_within_interval_timeout_and_five_seconds(
    deployment: Deployment, http: Clients
) -> None:
    alice, bob = await new_account(http.auth, "a"), await new_account(http.auth, "b")
    await direct_chat(http.messaging, alice, bob)
    a = await Client.connect(http.g1, alice, presence=True)
    await snapshot(a)
    pingy_url = deployment.start(
        "pingy",
        "gateway",
        PARLOUR_GATEWAY_PING_INTERVAL_SECONDS=str(PING_INTERVAL),
        PARLOUR_GATEWAY_PING_TIMEOUT_SECONDS=str(PING_TIMEOUT),
    )
    try:
        async with httpx.AsyncClient(base_url=pingy_url, timeout=20) as pingy:
            silent = await Client.connect(pingy, bob, presence=True)  # and never reads again: no pong
        last_pong_at = time.monotonic()
        await seen_as(a, bob.user_id, "online")
        bound = PING_INTERVAL + PING_TIMEOUT + 5.0
        await seen_as(a, bob.user_id, "offline", within=bound)
        assert time.monotonic() - last_pong_at <= bound
        assert (await silent.closed())[0] == 4002, "cut for the missing pong"
    finally:
        deployment.stop("pingy")
    await a.close()


async def test_a_restarted_presence_process_still_knows_who_is_online(deployment: Deployment, http: Clients) -> None:
    alice, bob = await new_account(http.auth, "a"), await new_account(http.auth, "b")
    await direct_chat(http.messaging, alice, bob)
    a = await Client.connect(http.g1, alice, presence=True)
    await snapshot(a)
    b = await Client.connect(http.g2, bob, presence=True)
    await seen_as(a, bob.user_id, "online")

    deployment.stop("presence")
    await b.close()  # its `session.closed` waits in presence's durable queue
    async with httpx.AsyncClient(base_url=deployment.start("presence", "presence"), timeout=20) as presence:
        gone = await seen_as(a, bob.user_id, "offline")
        assert gone["last_seen"] is not None
        asked = await look_up(presence, bob, alice.user_id)
        assert asked.json()["users"] == [{"user_id": alice.user_id, "status": "online", "last_seen": None}]
    await a.close()
