"""`soak`: a steady rate for a long time, watching what every process and server holds.

U users chat in pairs (direct chats) at `rate` messages/s for `duration` seconds on a distributed
deployment (the machine's own PostgreSQL, RabbitMQ and Redis: nothing is restarted). Every `interval`
seconds parlour/bench/footprint.py samples each Parlour process's RSS and open descriptors, the
namespace's queues, bindings and exchanges, its Redis keys and the database's connections. Reported:
RSS growth after `warmup` (%), descriptor and queue drift, and what is left once the processes stop:

- after a graceful stop, no queue that is not durable (the per-gateway ones go with their gateway), no
  Redis key without an expiry, no PostgreSQL connection;
- after `parlour namespace retire`'s deletion (parlour/common/retire.py), nothing of the namespace at all.

PASSED means the ledger's checks (every message acked once, delivered once, in order) and these: RSS
growth under `max_rss_growth` %, descriptor drift within `max_fd_drift`, queue and binding drift 0,
nothing left behind.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from parlour.bench import footprint
from parlour.bench.pool import Totals, WorkerPool
from parlour.bench.result import BenchResult
from parlour.bench.scenarios.load import share
from parlour.bench.session import ScenarioError, Session, split
from parlour.bench.target import Backing
from parlour.bench.worker import ClientSpec, LoadSpec
from parlour.common import retire


def run(
    session: Session,
    *,
    users: int,
    rate: float,
    duration: float,
    interval: float,
    warmup: float,
    max_rss_growth: float,
    max_fd_drift: int,
) -> BenchResult:
    if users < 2 or users % 2:
        raise ScenarioError("soak needs an even number of users, at least 2 (they chat in pairs)")
    target = session.target
    if target.processes is None:
        raise ScenarioError("soak starts its own distributed target (it stops it to look for leftovers)")
    where = _where(session)
    specs = session.new_specs(users)
    pool = session.start_pool(users)
    samples: list[footprint.Sample] = []
    try:
        groups = _pairs(session, pool, specs)
        session.progress.enter(f"connecting {users:,} clients")
        session.connect(pool, None, resume=True)
        began = time.monotonic()
        pool.call("load", [LoadSpec(time.monotonic_ns(), duration, r) for r in share(rate, [len(g) for g in groups])])
        session.progress.enter(f"{rate:g} msgs/s for {duration:g} s, a sample every {interval:g} s")
        while (elapsed := time.monotonic() - began) < duration:
            samples.append(footprint.take(where, elapsed))
            pool.wait_until(lambda _: False, timeout=min(interval, max(0.0, duration - (time.monotonic() - began))))
        samples.append(footprint.take(where, time.monotonic() - began))
        pool.call("stop_load")
        drained = _drain(session, pool)
        collected = session.collect(pool)
        pool.call("close")
    finally:
        pool.close()
        session.progress.done()
    session.progress.enter("stopping the deployment, looking for leftovers")
    target.processes.stop()
    leftovers = _leftovers(where)
    figures = footprint.drift(samples, warmup)
    verdict = session.ledger.verdict()
    checks = _checks(figures, leftovers, max_rss_growth, max_fd_drift)
    if not drained:
        checks["drained"] = False
    metrics: dict[str, float] = {
        "messages": verdict.acked,
        "acked_msgs_per_s": verdict.acked / duration,
        "samples": len(samples),
        **figures,
        **{f"left_{name}": value for name, value in leftovers.items()},
    }
    params = {"users": users, "rate": rate, "duration": duration, "interval": interval, "warmup": warmup}
    result, _ = session.result(params, metrics, {"ack": collected.ack_latency, "end_to_end": collected.e2e_latency}, {})
    result.timeline = [sample.to_dict() for sample in samples]
    failed = [name for name, ok in checks.items() if not ok]
    result.correctness = {**result.correctness, "soak_checks_failed": failed, "ok": verdict.ok and not failed}
    if failed:
        session.notes.append("soak checks failed: " + ", ".join(failed))
    return result


def _pairs(session: Session, pool: WorkerPool, specs: list[ClientSpec]) -> list[list[ClientSpec]]:
    """Provision the users and put them in pairs, one direct chat each; returns each worker's users."""
    pairs = split([(specs[i], specs[i + 1]) for i in range(0, len(specs), 2)], len(pool))
    groups = [[spec for pair in part for spec in pair] for part in pairs]
    session.provision(pool, groups)
    pool.call("assign", groups)
    answers = pool.call("direct_chats", [[(a.index, b.index) for a, b in part] for part in pairs])
    for part, chat_ids in zip(pairs, answers, strict=True):
        for (a, b), chat_id in zip(part, chat_ids, strict=True):
            for spec in (a, b):
                spec.chats, spec.sends_to = [chat_id], chat_id
                session.ledger.member(chat_id, spec.index)
    pool.call("assign", groups)
    return groups


def _where(session: Session) -> footprint.Where:
    env = session.target.env
    database_url = env["PARLOUR_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    server, database = database_url.rsplit("/", 1)
    return footprint.Where(
        pids=session.target.server_pids,
        namespace=env["PARLOUR_NAMESPACE"],
        redis_url=env.get("PARLOUR_REDIS_URL", Backing.redis_url),
        postgres=server,
        database=database,
    )


def _drain(session: Session, pool: WorkerPool) -> bool:
    session.progress.enter("draining")
    timeout = session.options.drain_timeout

    def drained(totals: Totals) -> bool:
        return totals["acked"] >= totals["sent"] and totals["received"] >= totals["acked"]

    return pool.wait_until(drained, timeout=timeout * 3, stall=timeout)


def _leftovers(where: footprint.Where) -> dict[str, int]:
    """What the stopped deployment left, then what is left after retiring its namespace."""
    namespace = where.namespace
    left = {
        "transient_queues": _transient_queues(namespace),
        "redis_keys_without_ttl": asyncio.run(footprint.redis_keys(where.redis_url, namespace, without_ttl=True)),
        "pg_connections": asyncio.run(footprint.pg_connections(where.postgres, where.database)),
    }
    amqp_url = Backing.shared().amqp_url
    asyncio.run(retire.retire(namespace, amqp_url, where.redis_url))
    left["queues_after_retire"] = footprint.rabbit_count("queues", namespace)
    left["exchanges_after_retire"] = footprint.rabbit_count("exchanges", namespace)
    left["redis_keys_after_retire"] = asyncio.run(footprint.redis_keys(where.redis_url, namespace))
    return left


def _transient_queues(namespace: str) -> int:
    """Queues of `namespace` that are not durable (the per-gateway ones: they must go with their gateway)."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        return -1
    listed = subprocess.run(  # noqa: S603
        [rabbitmqctl, "list_queues", "-q", "--no-table-headers", "name", "durable"],
        capture_output=True,
        text=True,
        check=False,
        timeout=footprint.CLI_TIMEOUT,
    )
    rows = [line.split() for line in listed.stdout.splitlines()]
    return sum(1 for row in rows if len(row) == 2 and row[0].startswith(f"{namespace}.") and row[1] != "true")


def _checks(figures: dict[str, float], leftovers: dict[str, int], max_rss: float, max_fd: int) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for name, value in figures.items():
        if name.endswith("_rss_growth_pct"):
            checks[name] = value < max_rss
        elif name.endswith("_fd_drift"):
            checks[name] = abs(value) <= max_fd
        elif name in ("queues_drift", "bindings_drift"):
            checks[name] = value == 0
    for name, value in leftovers.items():
        checks[f"left_{name}"] = value == 0
    return checks
