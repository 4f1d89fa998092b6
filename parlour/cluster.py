"""`parlour cluster`: the whole distributed topology on one machine, behind NGINX, started and stopped as one.

It runs exactly what docs/operations.md tells an operator to run by hand (and docker-compose.yaml runs in
containers): `parlour migrate`, then `parlour serve auth`, M `parlour serve messaging`, N `parlour serve
gateway`, `parlour serve web`, `parlour serve presence`, `parlour serve notifications`, each a child
process on a port the kernel
picked, and Debian's `nginx` with deploy/nginx.conf unchanged in front. The children read the same
`PARLOUR_*` environment and `.env` (from the working directory) as this process; only mode, port and the
auth URL are set per child.

Everything lives in a run folder: NGINX's main configuration and the two files deploy/nginx.conf
includes, one log file per process, `<run folder>/cluster.json` (every process's name, service, port and
pid) for tools and tests, and `<run folder>/prometheus/targets/parlour.json`, the file_sd targets
deploy/prometheus.yml reads
when it is copied into `prometheus/`. Stopping (SIGINT or SIGTERM) goes front to back: NGINX, gateways
(which drain), web, notifications, presence, messaging, auth; a process that outlives its grace is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# The site file ships in the package (deploy/nginx.conf in the checkout is a link to it).
NGINX_CONF = Path(__file__).resolve().parent / "deploy" / "nginx.conf"
READY_TIMEOUT = 60.0
STOP_GRACE = 20.0
# Order of stopping: the front first, so no new request reaches a process that is going away.
_STOP_ORDER = ("nginx", "gateway", "web", "notifications", "presence", "messaging", "auth")
_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class ClusterError(RuntimeError):
    """A process of the cluster did not start; the message names it and ends with its log."""


@dataclass
class Member:
    """One process of the cluster."""

    name: str
    service: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "service": self.service, "port": self.port, "pid": self.process.pid}


def free_port() -> int:
    """A port nothing listens on right now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def upstreams_conf(ports: Mapping[str, list[int]]) -> str:
    """`<run folder>/parlour/upstreams.conf` for deploy/nginx.conf: one block per service, one server per
    process."""
    lines = []
    for service, service_ports in ports.items():
        balance = "least_conn; " if service == "gateway" else ""
        servers = " ".join(f"server 127.0.0.1:{port};" for port in service_ports)
        lines.append(f"upstream parlour_{service} {{ {balance}{servers} }}")
    return "\n".join(lines) + "\n"


def nginx_main_conf(run_dir: Path, site_conf: Path) -> str:
    """A main configuration for an unprivileged NGINX whose every file lives in `run_dir`."""
    temp = run_dir / "nginx-temp"
    # As root, NGINX would hand its workers to `nobody`, who cannot enter a private run folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {run_dir / 'nginx.pid'};\nerror_log {run_dir / 'logs' / 'nginx-error.log'};\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"    access_log {run_dir / 'logs' / 'nginx-access.log'};\n"
        + "".join(f"    {kind}_temp_path {temp / kind};\n" for kind in _TEMP_KINDS)
        + f"    include {site_conf};\n"
        "}\n"
    )


def write_nginx_files(run_dir: Path, ports: Mapping[str, list[int]], listen_port: int, site_conf: Path) -> Path:
    """NGINX's main configuration, the two files `site_conf` includes, and the temp folders, in
    `run_dir`; returns the main configuration's path."""
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (run_dir / "parlour").mkdir(exist_ok=True)
    (run_dir / "parlour" / "upstreams.conf").write_text(upstreams_conf(ports))
    (run_dir / "parlour" / "listen.conf").write_text(f"listen 127.0.0.1:{listen_port};\n")
    for kind in _TEMP_KINDS:
        (run_dir / "nginx-temp" / kind).mkdir(parents=True, exist_ok=True)
    main = run_dir / "nginx.conf"
    main.write_text(nginx_main_conf(run_dir, site_conf))
    return main


@dataclass
class LocalCluster:
    """N gateways and M messaging processes, auth and web, behind NGINX on `port`."""

    run_dir: Path
    port: int
    gateways: int = 2
    messaging: int = 2
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    nginx: str = "nginx"
    site_conf: Path = NGINX_CONF
    members: list[Member] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Migrate, start every process, wait until each (and the front) is healthy; stop all on failure."""
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "cluster.json").unlink(missing_ok=True)  # a killed run's: it describes nothing now
        try:
            self._migrate()
            auth = self._spawn("auth", "auth")
            self._wait_healthy(auth)
            started = [self._spawn(f"messaging-{i}", "messaging") for i in range(1, self.messaging + 1)]
            started += [self._spawn(f"gateway-{i}", "gateway") for i in range(1, self.gateways + 1)]
            started.append(self._spawn("web", "web"))
            started.append(self._spawn("presence", "presence"))
            started.append(self._spawn("notifications", "notifications"))
            for member in started:
                self._wait_healthy(member)
            self._wait_healthy(self._start_nginx())
            self._write_state()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM (SIGQUIT for NGINX: graceful) front to back, each group in parallel, SIGKILL after the grace."""
        for service in _STOP_ORDER:
            group = [member for member in self.members if member.service == service]
            for member in group:
                if member.process.poll() is None:
                    member.process.send_signal(signal.SIGQUIT if service == "nginx" else signal.SIGTERM)
            for member in group:
                try:
                    member.process.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    member.process.kill()
                    member.process.wait()
        self.members.clear()
        (self.run_dir / "cluster.json").unlink(missing_ok=True)

    def _child_env(self, port: int) -> dict[str, str]:
        env = {**self.env, "PARLOUR_MODE": "distributed", "PARLOUR_HOST": "127.0.0.1", "PARLOUR_PORT": str(port)}
        # Browsers load the web client from the front, so that is the origin the gateways must accept.
        front = [f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"]
        env.setdefault("PARLOUR_PUBLIC_ORIGINS", json.dumps(front))
        auth = next((member for member in self.members if member.service == "auth"), None)
        if auth is not None:
            env["PARLOUR_AUTH_URL"] = f"http://127.0.0.1:{auth.port}"
        return env

    def _migrate(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "parlour", "migrate"],
            env=self._child_env(0),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise ClusterError(f"`parlour migrate` failed:\n{result.stdout}{result.stderr}")

    def _spawn(self, name: str, service: str) -> Member:
        port = free_port()
        log = self.run_dir / "logs" / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [sys.executable, "-m", "parlour", "serve", service],
                env=self._child_env(port),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the cluster command, which stops them in order
            )
        member = Member(name, service, port, process, log)
        self.members.append(member)
        return member

    def _start_nginx(self) -> Member:
        binary = shutil.which(self.nginx) or shutil.which(self.nginx, path="/usr/sbin:/sbin")
        if binary is None:
            raise ClusterError(f"{self.nginx} is not installed: `apt-get install -y nginx`")
        ports: dict[str, list[int]] = {}
        for member in self.members:
            ports.setdefault(member.service, []).append(member.port)
        main = write_nginx_files(self.run_dir, ports, self.port, self.site_conf.resolve())
        log = self.run_dir / "logs" / "nginx.log"
        error_log = self.run_dir / "logs" / "nginx-error.log"
        command = [binary, "-p", str(self.run_dir), "-c", str(main), "-e", str(error_log), "-g", "daemon off;"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
        member = Member("nginx", "nginx", self.port, process, log)
        self.members.append(member)
        return member

    def _wait_healthy(self, member: Member) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if member.process.poll() is not None:
                raise ClusterError(f"{member.name} exited with {member.process.returncode}:\n{self._tail(member)}")
            try:
                if httpx.get(f"http://127.0.0.1:{member.port}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # a child's readiness: no event crosses the process boundary
        raise ClusterError(f"{member.name} not healthy after {READY_TIMEOUT} s:\n{self._tail(member)}")

    def _tail(self, member: Member) -> str:
        return member.log.read_text(errors="replace")[-3000:]

    def _write_state(self) -> None:
        state = {"url": self.url, "processes": [member.describe() for member in self.members]}
        (self.run_dir / "cluster.json").write_text(json.dumps(state, indent=2) + "\n")
        # For deploy/prometheus.yml copied into <run dir>/prometheus/ (its file_sd reads targets/*.json).
        targets = [
            {"targets": [f"127.0.0.1:{member.port}"], "labels": {"service": member.service}}
            for member in self.members
            if member.service != "nginx"
        ]
        (self.run_dir / "prometheus" / "targets").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "prometheus" / "targets" / "parlour.json").write_text(json.dumps(targets, indent=2) + "\n")
