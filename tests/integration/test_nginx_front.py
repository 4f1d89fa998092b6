"""Debian's NGINX, with deploy/nginx.conf unchanged, in front of a real distributed deployment.

The deployment is `parlour cluster` itself, started the way docs/operations.md tells a new operator to
(its `.env` and its command line are read from that page): `parlour migrate`, auth, two messaging and
two gateway processes, web, presence, and NGINX, each a real OS process on this run's PostgreSQL database and a
namespace of RabbitMQ and Redis unique to this module. deploy/nginx.conf is included as it ships; only
the two files it includes (upstream addresses, the listen port) are written by the cluster command.
A browser and a WebSocket client talk to NGINX only; Debian's Prometheus, with deploy/prometheus.yml
unchanged, scrapes every process under a short load and answers every query of the Grafana dashboard.
The last test stops the cluster and retires its namespace, and RabbitMQ's and Redis's own views show
nothing left.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import websockets
from playwright.async_api import Browser, expect

from tests import services
from tests.clients import new_account
from tests.e2e.browser import ChatPage, launched_chromium
from tests.presence import look_up, seen_as, snapshot
from tests.processes import free_port, parlour_env, run_parlour, stop
from tests.waiting import eventually
from tests.ws_client import Client, direct_chat, get_pass, ws_url

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

READY_TIMEOUT = 120.0
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def require_nginx() -> None:
    """Skip unless Debian's nginx is installed (fail instead under PARLOUR_TEST_REQUIRE_SERVICES=1)."""
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        return
    message = "nginx is missing: install it with `apt-get install -y nginx`"
    if os.environ.get("PARLOUR_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (PARLOUR_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@dataclass
class RunningCluster:
    """A `parlour cluster` process and what it wrote to cluster.json."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    cwd: Path
    namespace: str
    url: str
    processes: list[dict[str, object]]

    def ports(self, service: str) -> list[int]:
        return [int(str(p["port"])) for p in self.processes if p["service"] == service]


def wait_for_cluster(process: subprocess.Popen[bytes], state: Path, log: Path) -> dict[str, object]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"parlour cluster exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        if state.exists():
            loaded: dict[str, object] = json.loads(state.read_text())
            return loaded
        time.sleep(0.1)  # polling a child process's readiness: no event crosses the process boundary
    raise TimeoutError(f"parlour cluster not ready after {READY_TIMEOUT} s:\n{log.read_text()[-4000:]}")


def operations_steps() -> tuple[dict[str, str], list[str]]:
    """The `.env` and the `parlour cluster` arguments that docs/operations.md tells an operator to use."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    dotenv = re.search(r"cat > \.env <<'ENV'\n(.*?)\nENV\n", doc, re.DOTALL)
    command = re.search(r"^\.venv/bin/parlour (cluster .*)$", doc, re.MULTILINE)
    assert dotenv, "docs/operations.md shows the .env"
    assert command, "docs/operations.md shows the cluster command"
    values = dict(line.split("=", 1) for line in dotenv.group(1).splitlines())
    return values, command.group(1).split()


@pytest.fixture(scope="module")
def cluster(module_postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """`parlour cluster` started as docs/operations.md says: its `.env` in the working directory (with this
    run's database and a namespace of its own), its command (with a free port instead of 8000)."""
    for service in ("rabbitmq", "redis"):
        services.require(service)
    require_nginx()
    namespace = services.unique_namespace()
    cwd = tmp_path_factory.mktemp("nginx-front")
    values, arguments = operations_steps()
    assert set(values) == {f"PARLOUR_{n}" for n in ("DATABASE_URL", "REDIS_URL", "AMQP_URL", "NAMESPACE", "DATA_DIR")}
    values |= {
        "PARLOUR_DATABASE_URL": module_postgres_database,
        "PARLOUR_REDIS_URL": services.REDIS_URL,
        "PARLOUR_AMQP_URL": services.AMQP_URL,
        "PARLOUR_NAMESPACE": namespace,
    }
    (cwd / ".env").write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    # Only the log format and level and the tests' cheap password hashing as PARLOUR_* variables: the
    # deployment's settings come from .env.
    env = parlour_env(PARLOUR_LOG_LEVEL="WARNING")
    port = free_port()
    arguments[arguments.index("--port") + 1] = str(port)
    log = cwd / "cluster.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "parlour", *arguments], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        state = wait_for_cluster(process, cwd / "parlour-cluster" / "cluster.json", log)
        processes = state["processes"]
        assert isinstance(processes, list)
        yield RunningCluster(process, env, cwd, namespace, f"http://127.0.0.1:{port}", processes)
    finally:
        stop(process, timeout=60)
        asyncio.run(services.remove_deployment(namespace))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launched_chromium() as chromium:
        yield chromium


async def gateway_sessions(port: int) -> float:
    """`parlour_gateway_sessions` of the gateway on `port`, read from its own /metrics."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    match = re.search(r"^parlour_gateway_sessions (\S+)$", text, re.MULTILINE)
    assert match, "the gateway exports parlour_gateway_sessions"
    return float(match.group(1))


@pytest.mark.browser
async def test_two_people_chat_in_the_browser_through_nginx_each_on_another_gateway(
    cluster: RunningCluster, browser: Browser
) -> None:
    people: list[ChatPage] = []
    try:
        for name in ("Ada", "Bob"):
            page = await ChatPage.open(browser, cluster.url, f"{name.lower()}{uuid.uuid4().hex[:6]}", name)
            people.append(page)
            await page.sign_up()  # lands on the chat screen with the socket live: Origin and Host agree
        ada, bob = people
        gateways = cluster.ports("gateway")
        counts = [await gateway_sessions(port) for port in gateways]
        assert counts == [1.0, 1.0], f"least_conn puts one person on each gateway: {counts}"

        await ada.start_direct_chat(bob)
        await ada.send("Hello Bob, through NGINX")
        await bob.open_chat("Ada")
        await bob.send("Hello Ada, from the other gateway")
        both = ["Hello Bob, through NGINX", "Hello Ada, from the other gateway"]
        await ada.expect_bodies(both)
        await bob.expect_bodies(both)
        await expect(ada.own_message("through NGINX")).to_have_attribute("data-state", "read")
        problems = [problem for person in people for problem in person.problems]
        assert not problems, problems
    finally:
        for page in people:
            await page.close()


async def test_a_websocket_client_chats_through_nginx_with_the_pages_origin(cluster: RunningCluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=20) as http:
        one, other = await new_account(http, "n"), await new_account(http, "n")
        chat_id = await direct_chat(http, one, other)
        origin = websockets.Origin(cluster.url)
        sender = await Client.connect(http, one, origin=origin)
        receiver = await Client.connect(http, other, origin=origin)
        try:
            await sender.send_message(chat_id, "over the front")
            [received] = await receiver.messages(chat_id, 1, 20)
            assert received["body"] == "over the front"
        finally:
            await sender.close()
            await receiver.close()


async def test_presence_answers_through_nginx_and_sees_a_contact_on_another_gateway(cluster: RunningCluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=20) as http:
        one, other = await new_account(http, "p"), await new_account(http, "p")
        await direct_chat(http, one, other)
        origin = websockets.Origin(cluster.url)
        watcher = await Client.connect(http, one, origin=origin, presence=True)
        await snapshot(watcher)
        contact = await Client.connect(http, other, origin=origin, presence=True)
        try:
            await seen_as(watcher, other.user_id, "online")
            asked = await look_up(http, one, other.user_id)
            assert asked.json()["users"] == [{"user_id": other.user_id, "status": "online", "last_seen": None}]
            settings = await http.get("/api/presence/settings", headers=one.headers)
            assert settings.json() == {"hidden": False}
        finally:
            await watcher.close()
            await contact.close()


async def test_a_page_of_another_origin_is_refused_through_nginx(cluster: RunningCluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=20) as http:
        account = await new_account(http, "o")
        url = ws_url(cluster.url, await get_pass(http, account))
        async with websockets.connect(url, origin=websockets.Origin("http://evil.example")) as connection:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(connection.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403


@contextmanager
def running_prometheus(cluster: RunningCluster, data: Path) -> Iterator[str]:
    """Debian's prometheus with deploy/prometheus.yml and its rules unchanged, copied into the cluster's
    `prometheus/` folder as docs/operations.md says, scraping the targets the cluster wrote there; its URL."""
    folder = cluster.cwd / "parlour-cluster" / "prometheus"
    binary = shutil.which("prometheus")
    if binary is None:
        message = "prometheus is missing: install it with `apt-get install -y prometheus`"
        if os.environ.get("PARLOUR_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (PARLOUR_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    for name in ("prometheus.yml", "prometheus-rules.yml"):
        shutil.copyfile(DEPLOY / name, folder / name)  # beside the targets file the cluster wrote
    port = free_port()
    command = [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={data / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with (data / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


async def instant(prometheus: httpx.AsyncClient, expr: str) -> list[dict[str, object]]:
    """The result vector of `expr` now, through Prometheus's HTTP API."""
    response = await prometheus.get("/api/v1/query", params={"query": expr})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


async def chat_load(http: httpx.AsyncClient, cluster: RunningCluster) -> list[Client]:
    """A short load through NGINX: accounts, sockets on both gateways, messages, refusals, closes.
    Returns the sockets it leaves open."""
    accounts = [await new_account(http, "p") for _ in range(4)]
    chat_id = await direct_chat(http, accounts[0], accounts[1])
    clients = [await Client.connect(http, account) for account in accounts]
    for i in range(20):
        await clients[i % 2].send_message(chat_id, f"load {i}")
    await clients[1].messages(chat_id, 10, 20)
    for _ in range(5):
        assert (await http.get("/api/chats")).status_code == 401  # the 4xx panel has something to show
    for client in clients[2:]:
        await client.close()  # and the closes panel
    return clients[:2]


async def test_prometheus_scrapes_the_deployment_and_every_dashboard_panel_has_data(
    cluster: RunningCluster, tmp_path: Path
) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "parlour.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    with running_prometheus(cluster, tmp_path) as url:
        async with (
            httpx.AsyncClient(base_url=cluster.url, timeout=20) as http,
            httpx.AsyncClient(base_url=url, timeout=10) as prometheus,
        ):
            open_clients = await chat_load(http, cluster)
            try:
                expected = len(cluster.processes) - 1  # every process but NGINX

                async def all_up() -> bool:
                    try:
                        up = await instant(prometheus, 'up{job="parlour"} == 1')
                    except httpx.TransportError:
                        return False  # still starting
                    return len(up) == expected

                await eventually(all_up, within=60, interval=0.5, what="prometheus scrapes every process")
                for query in queries:

                    async def has_data(query: str = query) -> list[dict[str, object]]:
                        return await instant(prometheus, query)

                    await eventually(has_data, within=60, interval=0.5, what=f"data for {query}")
                sessions = await instant(prometheus, "sum(parlour_gateway_sessions)")
                assert float(str(sessions[0]["value"][1])) == 2.0  # type: ignore[index]
                rules = (await prometheus.get("/api/v1/rules")).json()["data"]["groups"]
                assert sum(len(group["rules"]) for group in rules) >= 6
            finally:
                for client in open_clients:
                    await client.close()


# Last but one: it spends the address's /auth/ budget that the tests above need.
async def test_an_auth_burst_over_the_limit_gets_429_problems_with_retry_after(cluster: RunningCluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=20) as http:
        responses = await asyncio.gather(*(http.get("/auth/.well-known/jwks.json") for _ in range(60)))
    limited = [response for response in responses if response.status_code == 429]
    assert limited, [response.status_code for response in responses]
    assert {response.status_code for response in responses} <= {200, 429}
    for response in limited:
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        body = response.json()
        assert (body["status"], body["code"]) == (429, "rate_limited")
        assert body["request_id"] == response.headers["x-request-id"]


async def test_the_cluster_stops_cleanly_and_retiring_its_namespace_leaves_nothing(cluster: RunningCluster) -> None:
    pids = [int(str(p["pid"])) for p in cluster.processes]
    cluster.process.send_signal(signal.SIGINT)  # Ctrl-C, as an operator stops it
    assert await asyncio.to_thread(cluster.process.wait, 60) == 0
    assert not [pid for pid in pids if alive(pid)], "every process of the cluster is gone"
    prefix = f"{cluster.namespace}."
    queues = await asyncio.to_thread(services.rabbitmqctl_rows, "list_queues", "name")
    assert [row for row in queues if row[0].startswith(prefix)], "durable queues outlive the processes by design"

    result = await asyncio.to_thread(run_parlour, "namespace", "retire", "--yes", env=cluster.env, cwd=cluster.cwd)
    assert result.returncode == 0, result.stderr
    assert f"retired {cluster.namespace}:" in result.stdout

    async def broker_clean() -> bool:
        queues = await asyncio.to_thread(services.rabbitmqctl_rows, "list_queues", "name")
        exchanges = await asyncio.to_thread(services.rabbitmqctl_rows, "list_exchanges", "name")
        return not [row for row in queues + exchanges if row[0].startswith(prefix)]

    await eventually(broker_clean, within=30, interval=0.5, what="no queue or exchange of the namespace")
    client = redis.Redis.from_url(services.REDIS_URL)
    try:
        assert not list(client.scan_iter(match=f"{cluster.namespace}:*"))
    finally:
        client.close()
