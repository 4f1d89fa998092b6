"""Parlour as real OS processes, for tests of the CLI and of distributed mode."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from tests.services import AMQP_URL, REDIS_URL

READY_TIMEOUT = 30.0


def free_port() -> int:
    """A port nothing listens on right now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def parlour_env(**values: str) -> dict[str, str]:
    """The environment for a child `parlour` process: ours without PARLOUR_*, plus `values`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PARLOUR_")}
    for name in ("PASSWORD_TIME_COST", "PASSWORD_MEMORY_KIB", "PASSWORD_PARALLELISM"):
        env[f"PARLOUR_{name}"] = os.environ[f"PARLOUR_{name}"]
    env["PARLOUR_LOG_FORMAT"] = "json"
    env.update(values)
    return env


def run_parlour(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a `parlour` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "parlour", *args],
        check=False,
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT) -> None:
    """Poll `/health` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"parlour exited with {process.returncode} before it was healthy")
        try:
            if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a child process's readiness: no event crosses the process boundary
    raise TimeoutError(f"{base_url} not healthy after {timeout} s")


@contextmanager
def parlour_process(*args: str, env: Mapping[str, str], cwd: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A `parlour` server process, healthy on `port`; stopped with SIGTERM (SIGKILL if it lingers) on exit."""
    log = (cwd / f"parlour-{port}.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "parlour", *args], env=dict(env), cwd=cwd, stdout=log, stderr=log)
    try:
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", process)
        except (RuntimeError, TimeoutError) as exc:
            log.flush()
            tail = (cwd / f"parlour-{port}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{exc}; its log ends with:\n{tail}") from None
        yield process
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def distributed_env(namespace: str, database_url: str, data_dir: Path, **values: str) -> dict[str, str]:
    """The environment of a `parlour serve` process of a distributed test deployment."""
    return parlour_env(
        PARLOUR_MODE="distributed",
        PARLOUR_NAMESPACE=namespace,
        PARLOUR_DATABASE_URL=database_url,
        PARLOUR_AMQP_URL=AMQP_URL,
        PARLOUR_REDIS_URL=REDIS_URL,
        PARLOUR_DATA_DIR=str(data_dir),
        PARLOUR_LOG_LEVEL="WARNING",
        **values,
    )


class Deployment:
    """`parlour serve` processes of one namespace, each started with its own extra settings."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.stack = ExitStack()
        self.processes: dict[str, tuple[ExitStack, subprocess.Popen[bytes]]] = {}
        self.urls: dict[str, str] = {}

    def start(self, name: str, service: str, **settings: str) -> str:
        port = free_port()
        env = {**self.env, **settings, "PARLOUR_PORT": str(port)}
        stack = ExitStack()
        self.processes[name] = (
            stack,
            stack.enter_context(parlour_process("serve", service, env=env, cwd=self.cwd, port=port)),
        )
        self.stack.callback(stack.close)
        url = self.urls[name] = f"http://127.0.0.1:{port}"
        if service == "auth":
            self.env["PARLOUR_AUTH_URL"] = url
        return url

    def stop(self, name: str) -> None:
        """SIGTERM, as an operator stops a process."""
        stack, _ = self.processes.pop(name)
        stack.close()

    def kill(self, name: str) -> None:
        """SIGKILL: no drain, no goodbye."""
        stack, process = self.processes.pop(name)
        process.kill()
        process.wait()
        stack.close()

    async def exit_code(self, name: str, within: float = 60.0) -> int:
        """Wait for the process to end by itself; its exit code (negative: the signal that ended it)."""
        _, process = self.processes[name]
        return await asyncio.to_thread(process.wait, within)
