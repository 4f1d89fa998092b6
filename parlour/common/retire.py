"""Retiring a namespace on purpose: every RabbitMQ queue and exchange and every Redis key it owns.

A distributed deployment declares durable queues and exchanges (partitions, retry queues, the parked
queue, one queue per service subscription) that outlive its processes by design: a restart must lose
nothing. When a deployment is removed for good, `parlour namespace retire` deletes them, and its keys.

AMQP cannot list a broker's queues, so the names come from `rabbitmqctl` (run it where rabbitmqctl reaches
the node, as the broker's own tools require). Only names that start with `<namespace>.` are touched, and
Redis keys that start with `<namespace>:`. This module talks to aio-pika and redis-py directly, not
through the bus and key-value ports, which have no business deleting their own namespace at run time.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import dataclass

import aio_pika
import redis.asyncio as redis

_SCAN_BATCH = 500


class RetireError(RuntimeError):
    """The namespace could not be listed or removed; the message says what to install or check."""


@dataclass(frozen=True)
class Retired:
    """What a retirement deleted."""

    queues: list[str]
    exchanges: list[str]
    keys: int


def owned(names: list[str], namespace: str) -> list[str]:
    """The names of `namespace` among `names` (`<namespace>.` prefix: `parlour` never matches `parlour2.x`)."""
    prefix = f"{namespace}."
    return sorted(name for name in names if name.startswith(prefix))


def broker_names(kind: str, rabbitmqctl: str = "rabbitmqctl") -> list[str]:
    """Every queue (`kind="queues"`) or exchange name on the broker, as `rabbitmqctl` lists them."""
    binary = shutil.which(rabbitmqctl)
    if binary is None:
        raise RetireError(f"{rabbitmqctl} is not on PATH: run this where RabbitMQ's command-line tools reach the node")
    result = subprocess.run(  # noqa: S603 - the broker's own tool, fixed arguments
        [binary, f"list_{kind}", "name", "--quiet", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RetireError(f"rabbitmqctl list_{kind} failed: {result.stderr.strip()}")
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


async def retire_broker(amqp_url: str, queues: list[str], exchanges: list[str]) -> None:
    """Delete `queues`, then `exchanges` (whatever their messages, bindings or consumers)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection, connection.channel() as channel:
        amqp = await channel.get_underlay_channel()
        for queue in queues:
            await amqp.queue_delete(queue)
        for exchange in exchanges:
            await amqp.exchange_delete(exchange)


async def retire_keys(redis_url: str, namespace: str) -> int:
    """Delete every Redis key of `namespace`; returns how many."""
    client = redis.Redis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for name in client.scan_iter(match=f"{namespace}:*", count=_SCAN_BATCH):
            batch.append(name)
            if len(batch) >= _SCAN_BATCH:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


async def retire(namespace: str, amqp_url: str, redis_url: str, rabbitmqctl: str = "rabbitmqctl") -> Retired:
    """Delete every queue, exchange and key of `namespace`. Stop its processes first: a running one
    would declare its topology again when it reconnects."""
    queues = owned(await asyncio.to_thread(broker_names, "queues", rabbitmqctl), namespace)
    exchanges = owned(await asyncio.to_thread(broker_names, "exchanges", rabbitmqctl), namespace)
    await retire_broker(amqp_url, queues, exchanges)
    keys = await retire_keys(redis_url, namespace)
    return Retired(queues, exchanges, keys)
