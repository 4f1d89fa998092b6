"""Wires the notification channels from the process's infrastructure: called by `build_notifications`.

On the exit stack, in the order they close (reverse): the parking lot's consumer, the delivery worker and
the hourly purge of finished deliveries (supervised tasks), the outbound HTTP client.
"""

from __future__ import annotations

import asyncio
import ssl
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.common.bus.background import TaskSet
from parlour.common.clock import Clock
from parlour.common.contracts import USER_DELETED_KEY
from parlour.common.errors import Unavailable
from parlour.common.service import Infrastructure, ServiceParts
from parlour.common.settings import Settings
from parlour.notifications.adapters.bus import DeletedUsersConsumer
from parlour.notifications.adapters.channels_http import channels_router
from parlour.notifications.adapters.channels_sql import SqlChannelStore, SqlDeliveryQueue
from parlour.notifications.adapters.outbound import Outbound, Resolver, resolve
from parlour.notifications.adapters.webhooks import BusParking, SignedWebhookSender, subscribe_parking
from parlour.notifications.adapters.webpush import VapidKey, WebPushSender
from parlour.notifications.application.channel_ports import DeliveryQueue
from parlour.notifications.application.channels import ChannelHandlers
from parlour.notifications.application.delivery import ChannelDispatcher, DeliveryWorker, ParkedDeliveries
from parlour.notifications.application.ports import Dispatcher
from parlour.notifications.domain.delivery import RetrySchedule, TargetPolicy
from parlour.notifications.infrastructure.channel_tables import deliveries

log = structlog.get_logger(__name__)

# Finished deliveries are kept a week (a redelivered notification within it is still recognised), then
# deleted by an hourly purge. The decision side redelivers only what it had not marked sent: minutes, not days.
KEEP_FINISHED_SECONDS = 7 * 24 * 3600.0
PURGE_SECONDS = 3600.0
# Deleted accounts, whose subscriptions and webhooks go (auth's `user.deleted`): the channels' own queue.
DELETED_USERS_QUEUE = "notifications.deleted_users"
DELETED_USERS_BATCH = 100


async def purge_forever(queue: DeliveryQueue, clock: Clock, keep: float, interval: float) -> None:
    """Delete finished deliveries older than `keep` every `interval`; a failed purge is logged and retried."""
    while True:
        await asyncio.sleep(interval)
        try:
            await queue.purge(clock.utcnow() - timedelta(seconds=keep))
        except Exception as error:
            log.warning("notifications.purge_failed", error=f"{type(error).__name__}: {error}")


@dataclass
class ChannelParts(ServiceParts):
    """The channels' routes and readiness, and the `Dispatcher` the decision side hands notifications to."""

    dispatcher: Dispatcher | None = None
    worker: DeliveryWorker | None = None
    vapid_public_key: str = ""
    handlers: ChannelHandlers | None = field(default=None, repr=False)


def retry_schedule(settings: Settings) -> RetrySchedule:
    """The delivery retries the settings ask for."""
    base = settings.notifications_retry_base_seconds
    return RetrySchedule(
        attempts=settings.notifications_delivery_attempts,
        base=base,
        cap=max(base, settings.notifications_retry_max_seconds),
    )


async def build_channels(
    infra: Infrastructure,
    stack: AsyncExitStack,
    resolver: Resolver = resolve,
    verify: ssl.SSLContext | bool = True,
) -> ChannelParts:
    """The channels: VAPID key, stores, senders, the delivery worker and the parking consumer (on `stack`).

    `resolver` and `verify` (the TLS trust of the outbound client) are the system's unless a test brings its
    own name resolution and certificate authority."""
    settings = infra.settings
    key = VapidKey.load_or_create(settings.vapid_key_file, settings.notifications_vapid_private_key)
    timeout = settings.notifications_delivery_timeout_seconds

    # Redirects are refused per request (`Outbound.post`), no cookie is kept between users' requests, and
    # the answer's body is read raw (for the error text only).
    client = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=verify),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        auto_decompress=False,
    )
    policy = TargetPolicy(settings.notifications_allow_private_targets)
    outbound = Outbound(client, policy, infra.clock, resolver, timeout=timeout)
    stack.push_async_callback(outbound.aclose)
    store, queue = SqlChannelStore(infra.engine), SqlDeliveryQueue(infra.engine)
    worker = DeliveryWorker(
        queue,
        store,
        WebPushSender(key, outbound, infra.clock, subject=settings.notifications_vapid_subject),
        SignedWebhookSender(outbound, infra.clock),
        BusParking(infra.bus),
        infra.clock,
        schedule=retry_schedule(settings),
        disable_after=settings.notifications_webhook_disable_after_seconds,
        # A taken row is another worker's again this long after: past any attempt's end (the resolution's
        # timeout and the request's two), short enough that a killed process's rows go out soon after.
        lease=3 * timeout + 5,
    )
    tasks = TaskSet()
    stack.push_async_callback(tasks.cancel_all)
    # The parking queue first: a delivery the worker parks at once must find its queue bound.
    parking = await subscribe_parking(infra.bus, ParkedDeliveries(queue, infra.clock, worker.wake))
    stack.push_async_callback(parking.close)
    tasks.spawn(worker.run(), name="notifications.delivery")
    tasks.spawn(purge_forever(queue, infra.clock, KEEP_FINISHED_SECONDS, PURGE_SECONDS), name="notifications.purge")
    handlers = ChannelHandlers(store, outbound.check_resolved, infra.clock, key.public_key)
    deleted = await infra.bus.subscribe(
        DELETED_USERS_QUEUE, [USER_DELETED_KEY], DeletedUsersConsumer(handlers), max_batch=DELETED_USERS_BATCH
    )
    stack.push_async_callback(deleted.close)

    async def schema_ready() -> None:
        await _check_schema(infra.engine)

    return ChannelParts(
        routers=[channels_router(handlers)],
        readiness={"notifications.channels_schema": schema_ready},
        dispatcher=ChannelDispatcher(store, queue, infra.clock, worker.wake),
        worker=worker,
        vapid_public_key=key.public_key,
        handlers=handlers,
    )


async def _check_schema(engine: AsyncEngine) -> None:
    try:
        async with engine.connect() as connection:
            await connection.execute(select(deliveries.c.notification_id).limit(1))
    except Exception as error:
        raise Unavailable("The notification channels' tables are missing: run `parlour migrate`.") from error
