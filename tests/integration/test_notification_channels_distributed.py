"""The channels in distributed mode: two Parlour processes' worth of services (in this test process) on
one PostgreSQL database, RabbitMQ and Redis, sharing the delivery queue (leases, `FOR UPDATE SKIP LOCKED`)
and parking on RabbitMQ's parking queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests import services
from tests.channels import (
    A_503_THEN_201,
    Answer,
    Receiver,
    a_410_removes_the_subscription,
    a_503_then_201_is_retried_once_with_the_same_topic,
    channels_parlour,
    notification_for,
    web_push_testing,
)
from tests.clients import new_account
from tests.waiting import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
async def distributed(postgres_database: str) -> AsyncIterator[dict[str, Any]]:
    for service in ("rabbitmq", "redis"):
        services.require(service)
    namespace = services.unique_namespace()
    try:
        yield {
            "mode": "distributed",
            "namespace": namespace,
            "amqp_url": services.AMQP_URL,
            "redis_url": services.REDIS_URL,
        }
    finally:
        await services.remove_deployment(namespace)


async def test_two_processes_share_the_deliveries_and_each_is_delivered_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, postgres_database: str, distributed: dict[str, Any]
) -> None:
    async with (
        Receiver().running() as receiver,
        channels_parlour(monkeypatch, tmp_path, postgres_database, ["auth", "notifications"], **distributed) as one,
        channels_parlour(monkeypatch, tmp_path, postgres_database, ["auth", "notifications"], **distributed) as two,
    ):
        ada = await new_account(one.http, "ada")
        hook = (
            await two.http.post("/api/notifications/webhooks", json={"url": f"{receiver.url}/h"}, headers=ada.headers)
        ).json()
        sent = [notification_for(ada.user_id, f"chat-{n}") for n in range(30)]
        await one.dispatch(*sent[:15])
        await two.dispatch(*sent[15:])
        await one.dispatch(*sent[15:])  # the same notifications from the other process: recorded once

        got = [await receiver.next() for _ in sent]
        assert sorted(r.headers["webhook-id"] for r in got) == sorted(n.id for n in sent)
        for request in got:
            Webhook(hook["secret"]).verify(request.body, request.headers)
        last = notification_for(ada.user_id, "chat-last")
        await two.dispatch(last)
        assert (await receiver.next()).headers["webhook-id"] == last.id, "no delivery came twice"


async def test_a_delivery_given_up_is_parked_on_rabbitmq_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, postgres_database: str, distributed: dict[str, Any]
) -> None:
    settings = {**distributed, "notifications_delivery_attempts": 2}
    async with (
        Receiver([Answer(500), Answer(500)]).running() as receiver,
        channels_parlour(monkeypatch, tmp_path, postgres_database, ["auth", "notifications"], **settings) as one,
    ):
        ada = await new_account(one.http, "ada")
        await one.http.post("/api/notifications/webhooks", json={"url": f"{receiver.url}/h"}, headers=ada.headers)
        notification = notification_for(ada.user_id)
        await one.dispatch(notification)
        await receiver.next()
        await receiver.next()

        async def parked() -> list[str]:
            return [p.error for p in await one.bus.parked() if p.message.type == "notifications.delivery_parked"]

        (error,) = await eventually(parked, what="the parked delivery on RabbitMQ")
        assert "HTTP 500" in error
        assert "after 2 attempt(s)" in error
        assert await one.bus.replay() >= 1
        assert (await receiver.next()).headers["webhook-id"] == notification.id


async def test_a_410_from_the_push_service_removes_the_subscription(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, postgres_database: str, distributed: dict[str, Any]
) -> None:
    async with (
        web_push_testing(tmp_path) as service,
        channels_parlour(monkeypatch, tmp_path, postgres_database, ["auth", "notifications"], **distributed) as one,
    ):
        await a_410_removes_the_subscription(one, service)


async def test_a_503_then_201_is_retried_after_retry_after_and_delivered_once_with_the_same_topic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, postgres_database: str, distributed: dict[str, Any]
) -> None:
    async with (
        Receiver(A_503_THEN_201).running() as push,
        channels_parlour(monkeypatch, tmp_path, postgres_database, ["auth", "notifications"], **distributed) as one,
    ):
        await a_503_then_201_is_retried_once_with_the_same_topic(one, push)
