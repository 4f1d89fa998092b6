"""What a deployment holds, sampled over time (the soak): memory and descriptors of every process, and the
namespace's RabbitMQ queues and bindings, Redis keys and PostgreSQL connections.

Processes are read from /proc; RabbitMQ through `rabbitmqctl` (no management plugin needed), Redis with
SCAN over `<namespace>:*`, PostgreSQL from `pg_stat_activity` of the run's database. `drift` turns a
series of samples into the soak's figures: RSS growth after warm-up and descriptor and queue drift.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parlour.bench.procstat import parse_status_rss_bytes

CLI_TIMEOUT = 60


@dataclass
class Sample:
    """One look at the deployment, `at` seconds into the run."""

    at: float
    rss_mib: dict[str, float] = field(default_factory=dict)
    fds: dict[str, int] = field(default_factory=dict)
    queues: int = -1  # -1: could not be read
    bindings: int = -1
    exchanges: int = -1
    redis_keys: int = -1
    pg_connections: int = -1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def process_footprint(pid: int) -> tuple[float, int] | None:
    """(RSS in MiB, open descriptors) of a running process, None once it is gone."""
    root = Path("/proc") / str(pid)
    try:
        rss = parse_status_rss_bytes((root / "status").read_text()) / 2**20
        return round(rss, 2), len(os.listdir(root / "fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def rabbit_count(kind: str, namespace: str, column: str = "name") -> int:
    """How many queues / exchanges / bindings (`kind`) of `namespace` the broker lists; -1 if unreadable."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        return -1
    try:
        listed = subprocess.run(  # noqa: S603 - the broker's own tool, fixed arguments
            [rabbitmqctl, f"list_{kind}", "-q", "--no-table-headers", *column.split()],
            capture_output=True,
            text=True,
            check=False,
            timeout=CLI_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return -1
    if listed.returncode != 0:
        return -1
    prefix = f"{namespace}."
    return sum(1 for line in listed.stdout.splitlines() if any(word.startswith(prefix) for word in line.split()))


async def redis_keys(redis_url: str, namespace: str, *, without_ttl: bool = False) -> int:
    """Keys of `namespace` (only those that never expire, with `without_ttl`)."""
    from redis.asyncio import Redis  # noqa: PLC0415

    client = Redis.from_url(redis_url)
    try:
        count = 0
        async for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            if not without_ttl or await client.ttl(key) == -1:
                count += 1
        return count
    finally:
        await client.aclose()


async def pg_connections(server: str, database: str) -> int:
    import asyncpg  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415

    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database)
        return count
    finally:
        await connection.close()


@dataclass(frozen=True)
class Where:
    """What to look at: the processes, the namespace, the servers."""

    pids: dict[str, int]
    namespace: str
    redis_url: str
    postgres: str
    database: str


def take(where: Where, at: float) -> Sample:
    """A sample of everything now (the broker's CLI takes a second or two)."""
    sample = Sample(at=round(at, 1))
    for name, pid in where.pids.items():
        footprint = process_footprint(pid)
        if footprint is not None:
            sample.rss_mib[name], sample.fds[name] = footprint
    sample.queues = rabbit_count("queues", where.namespace)
    sample.exchanges = rabbit_count("exchanges", where.namespace)
    sample.bindings = rabbit_count("bindings", where.namespace, "source_name destination_name")
    sample.redis_keys = _quietly(redis_keys(where.redis_url, where.namespace))
    sample.pg_connections = _quietly(pg_connections(where.postgres, where.database))
    return sample


def _quietly(probe: Any) -> int:
    try:
        return int(asyncio.run(probe))
    except (OSError, RuntimeError) as error:  # an unreadable figure is -1, the run goes on
        del error
        return -1


def drift(samples: list[Sample], warmup: float) -> dict[str, float]:
    """RSS growth (%) and descriptor drift per process after `warmup` s, and the queue and binding drift.

    Growth compares the median of the last three samples with the median of the first three after the
    warm-up, so one sample caught mid-allocation does not decide."""
    settled = [sample for sample in samples if sample.at >= warmup] or samples[-1:]
    head, tail = settled[:3], settled[-3:]
    figures: dict[str, float] = {}
    for name in samples[0].rss_mib if samples else ():
        start = statistics.median(s.rss_mib[name] for s in head if name in s.rss_mib)
        end = statistics.median(s.rss_mib[name] for s in tail if name in s.rss_mib)
        figures[f"{name}_rss_growth_pct"] = round(100 * (end - start) / start, 2) if start else 0.0
        fds_start = statistics.median(s.fds[name] for s in head if name in s.fds)
        figures[f"{name}_fd_drift"] = statistics.median(s.fds[name] for s in tail if name in s.fds) - fds_start
    for kind in ("queues", "bindings", "exchanges"):
        read = [getattr(sample, kind) for sample in settled if getattr(sample, kind) >= 0]  # -1: unreadable
        figures[f"{kind}_drift"] = read[-1] - read[0] if read else 0
    return figures
