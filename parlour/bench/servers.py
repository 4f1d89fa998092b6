"""Private PostgreSQL, RabbitMQ and Redis servers for the chaos suite, which kills and restarts them.

The machine's own servers (5432, 5672, 6379) serve everybody's tests and must never be stopped, so
`parlour bench chaos` starts its own on free ports, each in a folder under one temporary directory:

- Redis with no persistence (`--save '' --appendonly no`): a restart empties it, and Parlour must survive
  that (passes, revocations, leases and rate limits are short-lived by design);
- PostgreSQL from `initdb`, run as the `postgres` user (PostgreSQL refuses root), `fsync=off`;
- RabbitMQ as a second node of this machine (`chaos-<random>@localhost`, its own ports, config, mnesia and
  log folders), run as the `rabbitmq` user so its command-line tools share the broker's Erlang cookie; a
  restart keeps the mnesia folder, so durable queues and persistent messages survive it.

`private_servers()` yields them started and, whatever happens, kills them all and removes the folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
RABBITMQ_HOME = "/var/lib/rabbitmq"  # the broker user's home: its .erlang.cookie is what the CLI needs
START_TIMEOUT = 90.0


class StartError(RuntimeError):
    """A private server could not be started; the message carries its log's tail."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(what: str, check: object, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)  # polling a start-up, bounded by the deadline
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""
    raise StartError(f"{what} did not come up within {timeout:.0f} s:\n{tail}")


def _own(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return  # not root: we run the servers as ourselves
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def _as(user: str) -> list[str]:
    """Run as `user` (the servers refuse root, or must share its files); as is when we already are not root."""
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


class Redis:
    """redis-server on a free port, nothing on disk."""

    name = "redis"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen([*argv, "--dir", str(self.folder)], stdout=log, stderr=log)  # noqa: S603
        log.close()
        _wait("redis", lambda: _answers(self.port), self.folder / "redis.log")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None and self.process.poll() is None else []


class Postgres:
    """A fresh cluster from initdb, run as `postgres` on a free port with its socket in its own folder."""

    name = "postgres"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.data = folder / "data"
        folder.mkdir()
        _own(folder, "postgres")
        subprocess.run(  # noqa: S603
            [*_as("postgres"), str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"],
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _ctl(self, *arguments: str, check: bool = True) -> None:
        options = f"-k {self.folder} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off -c max_connections=300"
        argv = [*_as("postgres"), str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "pg.log")]
        subprocess.run([*argv, "-o", options, *arguments], check=check, capture_output=True)  # noqa: S603

    def start(self) -> None:
        self._ctl("-w", "-t", str(int(START_TIMEOUT)), "start")
        _wait("postgres", lambda: _answers(self.port), self.folder / "pg.log")

    def kill(self) -> None:
        """`pg_ctl stop -m immediate`: every backend gone at once, crash recovery on the next start."""
        self._ctl("-w", "-m", "immediate", "stop", check=False)

    def pids(self) -> list[int]:
        pid_file = self.data / "postmaster.pid"
        try:
            return [int(pid_file.read_text().split()[0])]
        except (OSError, ValueError, IndexError):
            return []


class RabbitMQ:
    """A second RabbitMQ node of this machine; restarts keep its mnesia folder (durable queues survive)."""

    name = "rabbitmq"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir()
        (folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (folder / "enabled_plugins").write_text("[].\n")
        _own(folder, "rabbitmq")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> list[str]:
        folder = self.folder
        return [
            "env",
            f"HOME={RABBITMQ_HOME}",
            f"RABBITMQ_NODENAME={self.node}",
            f"RABBITMQ_NODE_PORT={self.port}",
            f"RABBITMQ_DIST_PORT={self.dist_port}",
            f"RABBITMQ_CONFIG_FILE={folder / 'rabbitmq.conf'}",
            f"RABBITMQ_MNESIA_BASE={folder / 'mnesia'}",
            f"RABBITMQ_LOG_BASE={folder / 'log'}",
            f"RABBITMQ_PID_FILE={folder / 'beam.pid'}",
            f"RABBITMQ_ENABLED_PLUGINS_FILE={folder / 'enabled_plugins'}",
        ]

    def cli(self, tool: str, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """rabbitmqctl / rabbitmq-diagnostics against this node (as the broker user, for its cookie)."""
        argv = [*_as("rabbitmq"), *self._env(), str(RABBITMQ_BIN / tool), "-q", "-n", self.node, *arguments]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)  # noqa: S603

    def start(self) -> None:
        log = (self.folder / "server.log").open("ab")
        argv = [*_as("rabbitmq"), *self._env(), str(RABBITMQ_BIN / "rabbitmq-server")]
        self.process = subprocess.Popen(argv, stdout=log, stderr=log, cwd=self.folder)  # noqa: S603
        log.close()
        _wait("rabbitmq", lambda: _answers(self.port) and self._ready(), self.folder / "server.log")

    def queue_depth(self, queue: str) -> int:
        """Messages waiting in `queue` (-1 when the node cannot say, 0 when there is no such queue)."""
        listed = self.cli("rabbitmqctl", "list_queues", "name", "messages", "--no-table-headers")
        if listed.returncode != 0:
            return -1
        rows = [line.split() for line in listed.stdout.splitlines()]
        return next((int(row[1]) for row in rows if len(row) == 2 and row[0] == queue), 0)

    def _ready(self) -> bool:
        return self.cli("rabbitmq-diagnostics", "check_port_connectivity", timeout=30).returncode == 0

    def kill(self) -> None:
        """SIGKILL the Erlang VM (no clean shutdown: the broker recovers its durable queues on start)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        deadline = time.monotonic() + 30
        while _answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)  # the listener goes with the VM

    def pids(self) -> list[int]:
        try:
            return [int((self.folder / "beam.pid").read_text().split()[0])]
        except (OSError, ValueError, IndexError):
            return []


Server = Redis | Postgres | RabbitMQ


@dataclass
class PrivateServers:
    """The three servers of one chaos run."""

    redis: Redis
    postgres: Postgres
    rabbitmq: RabbitMQ
    root: Path

    def by_name(self, name: str) -> Server:
        server: Server = getattr(self, name)
        return server

    def restart(self, name: str) -> None:
        server = self.by_name(name)
        server.kill()
        server.start()


def available() -> str | None:
    """Why private servers cannot run here, or None when they can."""
    for tool in (POSTGRES_BIN / "initdb", RABBITMQ_BIN / "rabbitmq-server"):
        if not tool.exists():
            return f"{tool} is missing"
    if shutil.which("redis-server") is None:
        return "redis-server is not on PATH"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing (the servers must not run as root)"
    return None


@contextmanager
def private_servers() -> Iterator[PrivateServers]:
    """Start the three servers in one temporary folder; kill them all and remove it afterwards."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="parlour-chaos-")))
        root.chmod(0o755)  # the server users must reach their folders
        redis, postgres, rabbitmq = Redis(root / "redis"), Postgres(root / "postgres"), RabbitMQ(root / "rabbitmq")
        for server in (redis, postgres, rabbitmq):
            stack.callback(server.kill)
        for server in (redis, postgres, rabbitmq):
            server.start()
        yield PrivateServers(redis, postgres, rabbitmq, root)


def copy_logs(folders: list[Path | None], into: Path) -> None:
    """Every `*.log` under `folders` into `into` (flattened: parent folder name, then the file's)."""
    into.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        for log in folder.rglob("*.log") if folder is not None else ():
            shutil.copyfile(log, into / f"{log.parent.name}-{log.name}")
