"""The system under test: started by the bench (embedded, distributed, a peer) or attached to (`--url`).

A started target runs as subprocesses on free ports with a fresh data folder (embedded), or a fresh
PostgreSQL database and a unique namespace (distributed), and is removed again when the run ends.
Parlour targets get cheap password hashing and raised login limits: the bench measures chat, not argon2.
A started Parlour target runs the presence and notifications services unless told not to
(`presence=False`: embedded `parlour run --without presence`; distributed, no `parlour serve presence`
process; the same for `notifications=False`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from parlour.bench.accounts import Endpoints

PEERS = {
    "fastapi-peer": ("fastapi", "parlour.bench.peers.fastapi_broadcast:app"),
    "socketio-peer": ("socketio", "parlour.bench.peers.socketio_rooms:app"),
}
TOPOLOGIES = ("embedded", "distributed", *PEERS)
START_TIMEOUT = 60.0
STOP_GRACE = 5.0  # then SIGKILL: the run is over, and its namespace is purged anyway
BIG = str(10**9)

# What the bench changes in a Parlour target, and why (printed with every result).
BENCH_ENV = {
    "PARLOUR_PASSWORD_TIME_COST": "1",  # argon2id at its cheapest: a benchmark of chat, not of hashing
    "PARLOUR_PASSWORD_MEMORY_KIB": "8",
    "PARLOUR_PASSWORD_PARALLELISM": "1",
    "PARLOUR_LOGIN_ATTEMPTS_PER_ADDRESS": BIG,  # every bench client logs in from 127.0.0.1
    "PARLOUR_LOGIN_ATTEMPTS_PER_USERNAME_AND_ADDRESS": BIG,
    "PARLOUR_GATEWAY_FRAMES_PER_SECOND": BIG,  # a bench client sends far faster than a person would
    "PARLOUR_GATEWAY_FRAME_BURST": BIG,
    "PARLOUR_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS": "true",  # the bench's webhook receiver is on loopback
}


@dataclass
class Target:
    """Where the bench sends load, and which processes to watch."""

    name: str
    dialect: str
    endpoints: Endpoints
    gateway_pids: list[int] = field(default_factory=list)
    server_pids: dict[str, int] = field(default_factory=dict)  # role -> pid, for CPU figures
    env: dict[str, str] = field(default_factory=dict)  # what the bench set for the target
    log_dir: Path | None = None
    presence: bool | None = None  # whether the bench started the presence service; None: not ours to say
    notifications: bool | None = None  # the same for the notifications service
    processes: _Processes | None = None  # started targets: to kill and restart one (chaos)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Processes:
    """Subprocesses of one target: started with logs, checked for readiness, stopped in reverse."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.plans: dict[str, tuple[list[str], dict[str, str]]] = {}  # name -> (argv, env), to start again
        self.ports: dict[str, int] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
        """Start one process and wait until it answers."""
        process = self.spawn(name, argv, env)
        self.wait_ready(name, process, port)
        return process

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start one process; `wait_ready` it later (several start-ups then overlap)."""
        self.plans[name] = (argv, env)
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, cwd=self.log_dir
        )
        log.close()
        self.running.append((name, process))
        return process

    def current(self, name: str) -> subprocess.Popen[bytes]:
        """The latest process started under `name`."""
        return next(process for started, process in reversed(self.running) if started == name)

    def kill(self, name: str) -> None:
        """SIGKILL `name`: no drain, no goodbye, as a crash or an OOM kill would."""
        process = self.current(name)
        process.kill()
        process.wait()

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start `name` again with its first argv and env (its port), and wait until it answers."""
        argv, env = self.plans[name]
        return self.start(name, argv, env, self.ports[name])

    def wait_ready(self, name: str, process: subprocess.Popen[bytes], port: int) -> None:
        self.ports[name] = port
        deadline = time.monotonic() + START_TIMEOUT
        url = f"http://127.0.0.1:{port}/health"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} during start-up:\n{self.tail(name)}")
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a start-up, bounded by the deadline
        raise RuntimeError(f"{name} did not answer {url} within {START_TIMEOUT:.0f} s:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for _, process in reversed(self.running):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for _, process in reversed(self.running):
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _serve_argv(command: list[str], port: int) -> list[str]:
    return [sys.executable, "-m", "parlour", *command, "--host", "127.0.0.1", "--port", str(port)]


@contextmanager
def embedded(log_level: str = "WARNING", *, presence: bool = True, notifications: bool = True) -> Iterator[Target]:
    """`parlour run` in a fresh data folder on a free port (`--without` each optional service turned off)."""
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="parlour-bench-")))
        processes = _Processes(workdir)
        stack.callback(processes.stop)
        port = free_port()
        env = {**BENCH_ENV, "PARLOUR_MODE": "embedded", "PARLOUR_LOG_LEVEL": log_level}
        left_out = [name for name, on in (("presence", presence), ("notifications", notifications)) if not on]
        without = [argument for name in left_out for argument in ("--without", name)]
        argv = _serve_argv(["run", "--data-dir", str(workdir / "data"), *without], port)
        process = processes.start("parlour-run", argv, env, port)
        base = f"http://127.0.0.1:{port}"
        name = "parlour embedded" + (f" without {' and '.join(left_out)}" if left_out else "")
        pids = {"parlour": process.pid}
        yield Target(
            name, "parlour", Endpoints.single(base), [process.pid], pids, env, workdir, presence, notifications
        )


@dataclass(frozen=True)
class Backing:
    """The PostgreSQL, RabbitMQ and Redis a distributed target runs on (the machine's own by default)."""

    postgres: str = "postgresql://postgres@127.0.0.1:5432"  # no database: the run creates its own
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    redis_url: str = "redis://127.0.0.1:6379/0"
    private: bool = False  # servers of this run alone, thrown away after it: nothing to purge

    @classmethod
    def shared(cls) -> Backing:
        return cls(
            amqp_url=os.environ.get("PARLOUR_AMQP_URL", cls.amqp_url),
            redis_url=os.environ.get("PARLOUR_REDIS_URL", cls.redis_url),
        )


@contextmanager
def distributed(
    messaging: int = 1,
    gateways: int = 1,
    log_level: str = "WARNING",
    backing: Backing | None = None,
    *,
    presence: bool = True,
    notifications: bool = True,
) -> Iterator[Target]:
    """Auth, `messaging` messaging, `gateways` gateway and (with `presence`, `notifications`) one presence
    and one notifications process, on PostgreSQL, RabbitMQ and Redis (the shared servers, or `backing`'s)."""
    backing = backing or Backing.shared()
    run_id = uuid.uuid4().hex[:10]
    database, namespace = f"parlour_bench_{run_id}", f"bench{run_id}"
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="parlour-bench-")))
        asyncio.run(_create_database(backing.postgres, database))
        if not backing.private:
            stack.callback(lambda: asyncio.run(_drop_database(backing.postgres, database)))
            stack.callback(lambda: asyncio.run(_purge_namespace(namespace, backing)))
        processes = _Processes(workdir)
        stack.callback(processes.stop)
        auth_port = free_port()
        env = {
            **BENCH_ENV,
            "PARLOUR_MODE": "distributed",
            "PARLOUR_LOG_LEVEL": log_level,
            "PARLOUR_DATABASE_URL": backing.postgres.replace("postgresql://", "postgresql+asyncpg://") + f"/{database}",
            "PARLOUR_AMQP_URL": backing.amqp_url,
            "PARLOUR_REDIS_URL": backing.redis_url,
            "PARLOUR_NAMESPACE": namespace,
            "PARLOUR_AUTH_URL": f"http://127.0.0.1:{auth_port}",
            "PARLOUR_DATA_DIR": str(workdir / "data"),
        }
        subprocess.run(
            [sys.executable, "-m", "parlour", "migrate"],
            env={**os.environ, **env},
            check=True,
            cwd=workdir,
            capture_output=True,
        )
        api_ports = [free_port() for _ in range(messaging)]
        gateway_ports = [free_port() for _ in range(gateways)]
        plan = [("auth", "auth", auth_port)]
        plan += [(f"messaging-{index}", "messaging", port) for index, port in enumerate(api_ports)]
        plan += [(f"gateway-{index}", "gateway", port) for index, port in enumerate(gateway_ports)]
        plan += [("presence", "presence", free_port())] if presence else []
        notifications_port = free_port()
        plan += [("notifications", "notifications", notifications_port)] if notifications else []
        started = [
            (name, processes.spawn(name, _serve_argv(["serve", service], port), env), port)
            for name, service, port in plan
        ]
        for name, process, port in started:
            processes.wait_ready(name, process, port)
        pids = {name: process.pid for name, process, _ in started}
        gateway_pids = [pids[f"gateway-{index}"] for index in range(gateways)]
        endpoints = Endpoints(
            auth=f"http://127.0.0.1:{auth_port}",
            api=f"http://127.0.0.1:{api_ports[0]}",
            gateways=tuple(f"http://127.0.0.1:{port}" for port in gateway_ports),
            notifications=f"http://127.0.0.1:{notifications_port}",
        )
        optional = (("presence", presence), ("notifications", notifications))
        left_out = "".join(f", no {name}" for name, on in optional if not on)
        name = f"parlour distributed ({messaging} messaging, {gateways} gateway{left_out})"
        yield Target(name, "parlour", endpoints, gateway_pids, pids, env, workdir, presence, notifications, processes)


@contextmanager
def peer(kind: str) -> Iterator[Target]:
    """One of parlour/bench/peers/, under uvicorn with Parlour's stack: uvloop, httptools, websockets-sansio."""
    dialect, app = PEERS[kind]
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="parlour-bench-")))
        processes = _Processes(workdir)
        stack.callback(processes.stop)
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--ws",
            "websockets-sansio",
            "--log-level",
            "warning",
        ]
        process = processes.start(kind, argv, {}, port)
        base = f"http://127.0.0.1:{port}"
        yield Target(kind, dialect, Endpoints.single(base), [process.pid], {kind: process.pid}, {}, workdir)


def attached(endpoints: Endpoints, dialect: str, gateway_pids: list[int]) -> Target:
    """A target somebody else runs (started with the limits in BENCH_ENV raised, for Parlour)."""
    return Target(
        f"attached {endpoints.gateways[0]}",
        dialect,
        endpoints,
        gateway_pids,
        {f"gateway-{i}": pid for i, pid in enumerate(gateway_pids)},
    )


@contextmanager
def launch(
    topology: str,
    *,
    messaging: int = 1,
    gateways: int = 1,
    log_level: str = "WARNING",
    presence: bool = True,
    notifications: bool = True,
    backing: Backing | None = None,
) -> Iterator[Target]:
    """Start `topology` and yield it; everything it made is gone afterwards (`presence`, `notifications`:
    Parlour only)."""
    if topology == "embedded":
        with embedded(log_level, presence=presence, notifications=notifications) as target:
            yield target
    elif topology == "distributed":
        with distributed(
            messaging, gateways, log_level, backing, presence=presence, notifications=notifications
        ) as target:
            yield target
    elif topology in PEERS:
        with peer(topology) as target:
            yield target
    else:
        raise ValueError(f"unknown topology {topology!r}; known: {', '.join(TOPOLOGIES)}")


async def _create_database(server: str, name: str) -> None:
    import asyncpg  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415 - distributed runs only

    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(server: str, name: str) -> None:
    import asyncpg  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415

    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _purge_namespace(namespace: str, backing: Backing) -> None:
    """Delete the run's Redis keys and RabbitMQ queues and exchanges (all named `<namespace>…`)."""
    import aio_pika  # noqa: PLC0415
    from redis.asyncio import Redis  # noqa: PLC0415

    redis = Redis.from_url(backing.redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{namespace}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
    queues, exchanges = _rabbit_names("list_queues", namespace), _rabbit_names("list_exchanges", namespace)
    connection = await aio_pika.connect(backing.amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in exchanges:
            await channel.exchange_delete(exchange)


def _rabbit_names(command: str, namespace: str) -> list[str]:
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        return []
    listed = subprocess.run(  # noqa: S603
        [rabbitmqctl, command, "-q", "--no-table-headers", "name"], capture_output=True, text=True, check=False
    )
    return [name.strip() for name in listed.stdout.splitlines() if name.strip().startswith(f"{namespace}.")]
