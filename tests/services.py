"""Reaching the real servers (PostgreSQL, Redis, RabbitMQ) from tests, isolated per test run.

A test that needs a server asks for it through `require()`. When the server does not answer, the test
is skipped on a developer's machine and fails under `PARLOUR_TEST_REQUIRE_SERVICES=1` (as `.ci/run` sets),
so CI can never pass by skipping.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid

import aio_pika
import pytest

from parlour.common.kv.redis import RedisKeyValueStore

POSTGRES_ADMIN_URL = os.environ.get("PARLOUR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PARLOUR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("PARLOUR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

_ADDRESSES = {
    "postgres": ("127.0.0.1", 5432),
    "redis": ("127.0.0.1", 6379),
    "rabbitmq": ("127.0.0.1", 5672),
}

# One id per test run: every database, key prefix and queue name of this run carries it.
RUN_ID = uuid.uuid4().hex[:10]


def run_namespace(label: str = "") -> str:
    """A namespace unique to this test run (and label), for Redis keys and RabbitMQ names."""
    suffix = f"-{label}" if label else ""
    return f"t{RUN_ID}{suffix}"


def unique_namespace() -> str:
    """A namespace unique to one test."""
    return f"t{RUN_ID}-{uuid.uuid4().hex[:8]}"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require(service: str) -> None:
    """Skip (or fail, when services are required) unless `service` answers on its port."""
    host, port = _ADDRESSES[service]
    if _answers(host, port):
        return
    message = f"{service} does not answer on {host}:{port}"
    if os.environ.get("PARLOUR_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and PARLOUR_TEST_REQUIRE_SERVICES=1")
    pytest.skip(message)


def rabbitmqctl_rows(command: str, *columns: str) -> list[list[str]]:
    """Rows of a `rabbitmqctl list_*` command: RabbitMQ's own view, not a client's."""
    result = subprocess.run(
        ["rabbitmqctl", command, *columns, "--quiet", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line.split("\t") for line in result.stdout.splitlines() if line.strip()]


async def remove_deployment(namespace: str) -> None:
    """Delete every RabbitMQ queue and exchange and every Redis key of `namespace` (test clean-up)."""
    prefix = f"{namespace}."
    queues = [row[0] for row in await asyncio.to_thread(rabbitmqctl_rows, "list_queues", "name")]
    exchanges = [row[0] for row in await asyncio.to_thread(rabbitmqctl_rows, "list_exchanges", "name")]
    connection = await aio_pika.connect(AMQP_URL)
    async with connection, connection.channel() as channel:
        underlay = await channel.get_underlay_channel()
        for queue in (name for name in queues if name.startswith(prefix)):
            await underlay.queue_delete(queue)
        for exchange in (name for name in exchanges if name.startswith(prefix)):
            await underlay.exchange_delete(exchange)
    kv = await RedisKeyValueStore.connect(REDIS_URL, namespace=namespace)
    try:
        await kv.delete_namespace()
    finally:
        await kv.close()
