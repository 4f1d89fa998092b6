"""The gateway in distributed mode: real processes on RabbitMQ, PostgreSQL and Redis.

`python -m parlour serve auth|messaging|gateway` as separate OS processes (two gateways, two messaging
workers) in a namespace unique to this module, on this run's PostgreSQL database. Clients are real
WebSocket clients; passes are issued by one gateway and may be redeemed at another (they live in Redis).
RabbitMQ's own view (`rabbitmqctl`) shows that user bindings and killed gateways' queues do not linger.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests import services
from tests.clients import new_account
from tests.databases import migrate_database
from tests.processes import distributed_env, free_port, parlour_process
from tests.waiting import eventually
from tests.ws_client import Client, direct_chat, group_chat

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

WAIT = 60.0  # seconds for RabbitMQ to show a change: generous, never reached when things work


@dataclass
class Cluster:
    """One distributed deployment: named `parlour serve` processes, started and stopped at will."""

    env: dict[str, str]
    cwd: Path
    namespace: str
    processes: dict[str, tuple[ExitStack, subprocess.Popen[bytes], str]] = field(default_factory=dict)

    def start(self, name: str, service: str) -> str:
        port = free_port()
        stack = ExitStack()
        env = {**self.env, "PARLOUR_PORT": str(port)}
        process = stack.enter_context(parlour_process("serve", service, env=env, cwd=self.cwd, port=port))
        self.processes[name] = (stack, process, f"http://127.0.0.1:{port}")
        if service == "auth":
            self.env["PARLOUR_AUTH_URL"] = f"http://127.0.0.1:{port}"
        return f"http://127.0.0.1:{port}"

    def kill(self, name: str) -> None:
        """SIGKILL: no drain, no goodbye; the broker notices the dead connection."""
        stack, process, _ = self.processes.pop(name)
        process.kill()
        process.wait()
        stack.close()

    def url(self, name: str) -> str:
        return self.processes[name][2]

    def stop_all(self) -> None:
        for name in list(self.processes):
            stack, _, _ = self.processes.pop(name)
            stack.close()


@pytest.fixture(scope="module")
def cluster(module_postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    for service in ("rabbitmq", "redis"):
        services.require(service)
    namespace = services.unique_namespace()
    cwd = tmp_path_factory.mktemp("gateway-cluster")
    env = distributed_env(namespace, module_postgres_database, cwd / "data")
    asyncio.run(migrate_database(module_postgres_database))
    cluster = Cluster(env, cwd, namespace)
    try:
        cluster.start("auth", "auth")
        for name, service in [("m1", "messaging"), ("m2", "messaging"), ("g1", "gateway"), ("g2", "gateway")]:
            cluster.start(name, service)
        yield cluster
    finally:
        cluster.stop_all()
        asyncio.run(services.remove_deployment(namespace))


def route_queues(namespace: str) -> set[str]:
    """The gateways' delivery-route queues of `namespace`."""
    return {
        row[0] for row in services.rabbitmqctl_rows("list_queues", "name") if row[0].startswith(f"{namespace}.route.")
    }


def user_bindings(namespace: str) -> list[tuple[str, str]]:
    """(queue, routing key) of every `user.*` binding to a route queue of `namespace`."""
    rows = services.rabbitmqctl_rows("list_bindings", "destination_name", "routing_key")
    return [
        (row[0], row[1])
        for row in rows
        if len(row) == 2 and row[0].startswith(f"{namespace}.route.") and row[1].startswith("user.")
    ]


async def rabbitmq_shows(check: Callable[[], bool], what: str) -> None:
    """Wait until RabbitMQ's own view (read in a thread: rabbitmqctl is a process) satisfies `check`."""
    await eventually(lambda: asyncio.to_thread(check), within=WAIT, interval=0.5, what=what)


@dataclass
class Clients:
    auth: httpx.AsyncClient
    messaging: httpx.AsyncClient
    g1: httpx.AsyncClient
    g2: httpx.AsyncClient


@pytest.fixture
async def http(cluster: Cluster) -> AsyncIterator[Clients]:
    async with (
        httpx.AsyncClient(base_url=cluster.url("auth"), timeout=20) as auth,
        httpx.AsyncClient(base_url=cluster.url("m1"), timeout=20) as messaging,
        httpx.AsyncClient(base_url=cluster.url("g1"), timeout=20) as g1,
        httpx.AsyncClient(base_url=cluster.url("g2"), timeout=20) as g2,
    ):
        yield Clients(auth, messaging, g1, g2)


async def test_a_group_across_two_gateways_and_two_workers_sees_every_message_in_one_order(
    cluster: Cluster, http: Clients
) -> None:
    accounts = [await new_account(http.auth, f"g{i}") for i in range(5)]
    chat_id = await group_chat(http.messaging, accounts[0], accounts[1:], "five")
    clients = [
        await Client.connect(http.g1 if i < 3 else http.g2, account, batch=i % 2 == 0)
        for i, account in enumerate(accounts)
    ]
    clients.append(await Client.connect(http.g2, accounts[0]))  # the owner's second device, elsewhere
    per_sender = 10
    await asyncio.gather(
        *(client.send_message(chat_id, f"{n}:{i}") for n, client in enumerate(clients[:5]) for i in range(per_sender))
    )
    total = 5 * per_sender
    streams = [[(f["seq"], f["message_id"], f["body"]) for f in await c.messages(chat_id, total, 60)] for c in clients]
    assert all(stream == streams[0] for stream in streams)
    assert [seq for seq, _, _ in streams[0]] == list(range(1, total + 1))
    assert sorted(body for _, _, body in streams[0]) == sorted(f"{n}:{i}" for n in range(5) for i in range(per_sender))

    assert user_bindings(cluster.namespace), "connected users are bound"
    for client in clients:
        await client.close()
    await rabbitmq_shows(lambda: not user_bindings(cluster.namespace), "user bindings after every client left")


async def test_resume_after_the_gateway_is_killed_gets_exactly_the_missed_messages(
    cluster: Cluster, http: Clients
) -> None:
    alice, bob = await new_account(http.auth, "a"), await new_account(http.auth, "b")
    chat_id = await direct_chat(http.messaging, alice, bob)
    before = route_queues(cluster.namespace)
    doomed_url = cluster.start("doomed", "gateway")
    doomed_queues = await asyncio.to_thread(lambda: route_queues(cluster.namespace) - before)
    assert doomed_queues, "the new gateway declared its route queue"

    a = await Client.connect(http.g1, alice)
    async with httpx.AsyncClient(base_url=doomed_url, timeout=20) as doomed:
        b = await Client.connect(doomed, bob)
    for i in range(3):
        await a.expect("message.ack", client_id=await a.send_message(chat_id, f"before-{i}"))
    last_seq = (await b.messages(chat_id, 3))[-1]["seq"]

    cluster.kill("doomed")
    code, _ = await b.closed()
    assert code is None, "a killed gateway sends no close frame: the client sees a network failure"
    await rabbitmq_shows(lambda: not (route_queues(cluster.namespace) & doomed_queues), "the killed gateway's queue")

    for i in range(50):
        await a.expect("message.ack", client_id=await a.send_message(chat_id, f"missed-{i}"))
    b = await Client.connect(http.g2, bob)
    await b.send({"type": "resume", "chats": {chat_id: last_seq}})
    live = asyncio.gather(*(a.send_message(chat_id, f"live-{i}") for i in range(10)))
    frames = await b.until(lambda frame: frame["type"] == "resume.done", 60)
    await live
    stream = [f["body"] for f in frames if f["type"] == "message.new" and f["chat_id"] == chat_id]
    stream += [f["body"] for f in await b.messages(chat_id, 60 - len(stream), 60)]
    assert stream[:50] == [f"missed-{i}" for i in range(50)]
    assert sorted(stream[50:]) == sorted(f"live-{i}" for i in range(10))
    await b.send({"type": "ping", "id": "end"})
    tail = await b.until(lambda frame: frame["type"] == "pong")
    assert not [f for f in tail if f["type"] == "message.new"], "no duplicates after the live messages"
    await a.close()
    await b.close()
    await rabbitmq_shows(lambda: not user_bindings(cluster.namespace), "user bindings after every client left")


async def test_one_client_id_sent_three_times_and_again_on_the_other_gateway_reaches_the_others_once(
    http: Clients,
) -> None:
    alice, bob = await new_account(http.auth, "a"), await new_account(http.auth, "b")
    chat_id = await direct_chat(http.messaging, alice, bob)
    b = await Client.connect(http.g2, bob)
    frame = {"type": "message.send", "chat_id": chat_id, "client_id": "k-once", "body": "once"}
    for gateway in (http.g1, http.g2):
        a = await Client.connect(gateway, alice)
        for _ in range(3):
            await a.send(frame)
        acks = [await a.expect("message.ack", client_id="k-once") for _ in range(3)]
        assert {(ack["seq"], ack["message_id"]) for ack in acks} == {(1, acks[0]["message_id"])}
        await a.close()
    a = await Client.connect(http.g1, alice)
    await a.send_message(chat_id, "next")
    frames = await b.until(lambda frame: frame.get("body") == "next", 60)
    assert [f["seq"] for f in frames if f["type"] == "message.new"] == [1, 2]
    await a.close()
    await b.close()


async def test_a_logout_at_auth_is_known_to_every_process_within_a_second(cluster: Cluster, http: Clients) -> None:
    alice = await new_account(http.auth, "a")
    sockets = [await Client.connect(http.g1, alice), await Client.connect(http.g2, alice)]
    try:
        logged_out_at = time.monotonic()
        assert (await http.auth.delete("/auth/sessions/current", headers=alice.headers)).status_code == 204
        for socket in sockets:  # both gateways close the session's sockets
            assert (await socket.closed(within=1.5))[0] == 4004
        assert time.monotonic() - logged_out_at < 1.5
        for client, path in [
            (http.messaging, "/api/chats"),
            (http.g2, "/gateway/passes"),
            (http.auth, "/auth/users/me"),
        ]:
            method = client.post if path == "/gateway/passes" else client.get
            refused = await method(path, headers=alice.headers)
            assert (refused.status_code, refused.json()["code"]) == (401, "session_revoked")
    finally:
        for socket in sockets:
            await socket.close()
