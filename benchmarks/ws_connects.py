"""Authenticated connects per second on one gateway: pass + WebSocket upgrade + route bound (until `hello`).

    .venv/bin/python -m benchmarks.ws_connects [--connects 2000] [--concurrency 50] [--users 50] [--hold]
        [--processes 4]
    .venv/bin/python -m benchmarks.ws_connects --distributed [--postgres-url postgresql://postgres@127.0.0.1/postgres]

Each worker loops: `POST /gateway/passes` with a user's access token, open `/gateway/ws?pass=`, wait for
`hello` (written only after the session is registered, the user's route bound and `session.opened`
published), then close (or, with `--hold`, keep the connection, so no unbind runs during the
measurement). Embedded: one `parlour run` process (in-memory bus and store). Distributed: `parlour serve
auth` and `parlour serve gateway` on RabbitMQ, Redis and a scratch PostgreSQL database, in a fresh
namespace; all deleted afterwards. `gateway_cpu_ms_per_connect` is the gateway process's CPU time per
connect, which says what one core can take when the client side is the limit.
Results go to stdout as JSON; docs/benchmarks.md, "Gateway connects", has this machine's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets

from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.clock import SystemClock
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.common.kv.redis import RedisKeyValueStore
from parlour.common.settings import Settings

PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


PIDS: dict[str, int] = {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_parlour(stack: ExitStack, args: list[str], env: dict[str, str], cwd: Path) -> str:
    port = _free_port()
    log = stack.enter_context((cwd / f"{args[-1]}-{port}.log").open("wb"))
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "parlour", *args],
        env={**env, "PARLOUR_PORT": str(port)},
        cwd=cwd,
        stdout=log,
        stderr=log,
    )
    stack.callback(_stop, process)
    PIDS[args[-1]] = process.pid
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return url
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{args} did not become healthy")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


async def _accounts(auth_url: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=auth_url, timeout=30) as http:

        async def one() -> str:
            username = f"bench{uuid.uuid4().hex[:12]}"
            created = await http.post("/auth/users", json={"username": username, "password": PASSWORD})
            created.raise_for_status()
            tokens = await http.post("/auth/sessions", json={"username": username, "password": PASSWORD})
            tokens.raise_for_status()
            token: str = tokens.json()["access_token"]
            return token

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def _connect_loop(
    gateway_url: str, tokens: list[str], connects: int, concurrency: int, hold: bool
) -> tuple[list[float], float]:
    """Run `connects` connects over `concurrency` workers; their latencies and the elapsed seconds."""
    ws_base = gateway_url.replace("http://", "ws://")
    latencies: list[float] = []
    held: list[websockets.ClientConnection] = []
    remaining = connects
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=gateway_url, timeout=30, limits=limits) as http:

        async def worker(index: int) -> None:
            nonlocal remaining
            headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                issued = await http.post("/gateway/passes", headers=headers)
                issued.raise_for_status()
                connection = await websockets.connect(f"{ws_base}/gateway/ws?pass={issued.json()['pass']}")
                hello = json.loads(await connection.recv())
                assert hello["type"] == "hello", hello
                latencies.append(time.perf_counter() - started)
                if hold:
                    held.append(connection)
                else:
                    await connection.close()

        started = time.perf_counter()
        await asyncio.gather(*(worker(index) for index in range(concurrency)))
        elapsed = time.perf_counter() - started
    for connection in held:
        await connection.close()
    return latencies, elapsed


def _summary(latencies: list[float], elapsed: float) -> dict[str, Any]:
    latencies = sorted(latencies)
    return {
        "connects": len(latencies),
        "seconds": round(elapsed, 2),
        "connects_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
    }


def _measure(gateway_url: str, tokens: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """One client process, or `--processes` of them started together (the client must not be the limit)."""
    if args.processes == 1:
        return _summary(*asyncio.run(_connect_loop(gateway_url, tokens, args.connects, args.concurrency, args.hold)))
    share, per_process = args.connects // args.processes, max(1, args.concurrency // args.processes)
    command = [sys.executable, "-m", "benchmarks.ws_connects", "--worker", gateway_url, str(share), str(per_process)]
    workers = [
        subprocess.Popen(  # noqa: S603 - this script
            [*command, *(["--hold"] if args.hold else [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(args.processes)
    ]
    for index, worker in enumerate(workers):
        assert worker.stdin is not None
        assert worker.stdout is not None
        worker.stdin.write(json.dumps(tokens[index :: args.processes] or tokens) + "\n")
        worker.stdin.flush()
        assert worker.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    latencies: list[float] = []
    for worker in workers:
        assert worker.stdout is not None
        latencies += json.loads(worker.stdout.readline())
        worker.wait(60)
    return _summary(latencies, time.perf_counter() - started)


def _worker(url: str, connects: int, concurrency: int, hold: bool) -> None:
    tokens = json.loads(sys.stdin.readline())
    print("ready", flush=True)
    sys.stdin.readline()
    latencies, _ = asyncio.run(_connect_loop(url, tokens, connects, concurrency, hold))
    print(json.dumps(latencies), flush=True)


def base_env(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PARLOUR_")}
    env.update(
        {
            "PARLOUR_DATA_DIR": str(data_dir),
            "PARLOUR_LOG_LEVEL": "WARNING",
            "PARLOUR_PASSES_PER_MINUTE": "1000000",
            "PARLOUR_LOGIN_ATTEMPTS_PER_ADDRESS": "1000000",  # every bench account logs in from 127.0.0.1
            # Cheap password hashing: the bench measures connects, not logins.
            "PARLOUR_PASSWORD_TIME_COST": "1",
            "PARLOUR_PASSWORD_MEMORY_KIB": "8",
            "PARLOUR_PASSWORD_PARALLELISM": "1",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        cwd = Path(folder)
        env = base_env(cwd / "data")
        if not args.distributed:
            url = start_parlour(stack, ["run"], env, cwd)
            auth_url = gateway_url = url
        else:
            namespace = f"bench-{uuid.uuid4().hex[:8]}"
            database = f"bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_admin(args.postgres_url, f'CREATE DATABASE "{database}"'))
            stack.callback(lambda: asyncio.run(_admin(args.postgres_url, f'DROP DATABASE "{database}" WITH (FORCE)')))
            base = args.postgres_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
            env.update(
                PARLOUR_MODE="distributed",
                PARLOUR_NAMESPACE=namespace,
                PARLOUR_DATABASE_URL=f"{base}/{database}",
            )
            subprocess.run([sys.executable, "-m", "parlour", "migrate"], env=env, cwd=cwd, check=True)
            auth_url = start_parlour(stack, ["serve", "auth"], env, cwd)
            gateway_url = start_parlour(stack, ["serve", "gateway"], {**env, "PARLOUR_AUTH_URL": auth_url}, cwd)
            stack.callback(_delete_namespace, namespace)
        tokens = asyncio.run(_accounts(auth_url, args.users))
        gateway_pid = PIDS["gateway" if args.distributed else "run"]
        cpu_before = cpu_seconds(gateway_pid)
        result = _measure(gateway_url, tokens, args)
        cpu_ms = (cpu_seconds(gateway_pid) - cpu_before) * 1000 / result["connects"]
        result["gateway_cpu_ms_per_connect"] = round(cpu_ms, 2)
    mode = "distributed" if args.distributed else "embedded"
    shape = {"hold": args.hold, "concurrency": args.concurrency, "users": args.users, "processes": args.processes}
    return {"mode": mode, **shape, **result}


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _delete_namespace(namespace: str) -> None:
    settings = Settings()

    async def clean() -> None:
        clock = SystemClock()
        bus = await AmqpMessageBus.connect(
            settings.amqp_url, namespace=namespace, kv=InMemoryKeyValueStore(clock), clock=clock
        )
        await bus.delete_topology()
        await bus.close()
        kv = await RedisKeyValueStore.connect(settings.redis_url, namespace=namespace)
        await kv.delete_namespace()
        await kv.close()

    asyncio.run(clean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--hold", action="store_true", help="keep every connection open until the end")
    parser.add_argument("--processes", type=int, default=1, help="client processes, started together")
    parser.add_argument("--distributed", action="store_true")
    parser.add_argument("--worker", nargs=3, metavar=("URL", "CONNECTS", "CONCURRENCY"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres", help="to create a scratch database"
    )
    args = parser.parse_args()
    if args.worker:
        url, connects, concurrency = args.worker
        _worker(url, int(connects), int(concurrency), args.hold)
        return
    print(json.dumps(run(args)), flush=True)


if __name__ == "__main__":
    main()
