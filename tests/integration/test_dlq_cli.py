"""`parlour dlq list` and `parlour dlq replay` against RabbitMQ, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from parlour.common.bus import BusMessage
from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.bus.policy import RetryPolicy
from parlour.common.clock import SystemClock
from parlour.common.kv.memory import InMemoryKeyValueStore
from tests import services
from tests.processes import parlour_env, run_parlour
from tests.waiting import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]


async def test_a_parked_command_is_listed_and_replayed_to_a_healthy_consumer(tmp_path: Path) -> None:
    services.require("rabbitmq")
    services.require("redis")
    namespace = services.unique_namespace()
    bus = await AmqpMessageBus.connect(
        services.AMQP_URL, namespace=namespace, kv=InMemoryKeyValueStore(SystemClock()), clock=SystemClock(),
        policy=RetryPolicy(1, 0.01),
    )  # fmt: skip
    env = parlour_env(PARLOUR_NAMESPACE=namespace, PARLOUR_AMQP_URL=services.AMQP_URL)
    try:
        failed = asyncio.Event()

        async def broken(batch: Sequence[BusMessage]) -> None:
            failed.set()
            raise RuntimeError("the handler is broken today")

        subscription = await bus.consume_commands(broken)
        await bus.send_command("chat-1", BusMessage(type="message.send", body=b'{"n": 1}', message_id="m-1"))
        async with asyncio.timeout(20):
            await failed.wait()
        await eventually(bus.parked, what="the command in the parking queue")
        await subscription.close()

        listed = await asyncio.to_thread(run_parlour, "dlq", "list", env=env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        [record] = [json.loads(line) for line in listed.stdout.splitlines()]
        assert record["message_id"] == "m-1"
        assert record["type"] == "message.send"
        assert "the handler is broken today" in record["error"]
        assert record["attempts"] == 1

        received: asyncio.Queue[BusMessage] = asyncio.Queue()

        async def healthy(batch: Sequence[BusMessage]) -> None:
            for message in batch:
                received.put_nowait(message)

        subscription = await bus.consume_commands(healthy)
        replayed = await asyncio.to_thread(run_parlour, "dlq", "replay", "m-1", env=env, cwd=tmp_path)
        assert replayed.returncode == 0, replayed.stderr
        assert "replayed 1 message" in replayed.stdout
        async with asyncio.timeout(20):
            message = await received.get()
        assert message.message_id == "m-1"
        assert message.body == b'{"n": 1}'
        assert await bus.parked() == []
        await subscription.close()
    finally:
        await bus.close()
        # The CLI's own connections declared the topology with default retry delays: remove by prefix.
        await services.remove_deployment(namespace)
