"""Wires the notifications service from the process's infrastructure (called by the composition root).

The decision half (this package's handlers and scheduler) hands due notifications to the channels'
`Dispatcher` (Web Push, webhooks; parlour/notifications/channels.py builds them). On the exit stack, in
the order they close (reverse): the bus consumers (closed first, so nothing new is noted), then the
scheduler (a supervised task), then the channels' own. Everything else lives in the database and the
key-value store: a process that stops, or is killed, leaves its due notifications to the next
(docs/subsystems/notifications.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.common.bus import BatchHandler, MessageBus
from parlour.common.bus.background import TaskSet
from parlour.common.clock import Clock
from parlour.common.contracts import PRESENCE_CHANGED, USER_DELETED_KEY, USER_REGISTERED_KEY, USER_RENAMED_KEY
from parlour.common.errors import Unavailable
from parlour.common.service import Infrastructure, ServiceParts
from parlour.notifications.adapters.bus import (
    MESSAGE_KEYS,
    MessagesConsumer,
    NotificationMetrics,
    PresenceConsumer,
    UsersConsumer,
)
from parlour.notifications.adapters.http import notifications_router
from parlour.notifications.adapters.kv import KeyValueStatuses
from parlour.notifications.adapters.sql import SqlDirectory, SqlMemberships, SqlPendingStore, SqlPreferences
from parlour.notifications.application.handlers import NotificationHandlers
from parlour.notifications.application.ports import Dispatcher
from parlour.notifications.application.scheduler import Scheduler
from parlour.notifications.channels import ChannelParts, build_channels
from parlour.notifications.domain.rule import Timing
from parlour.notifications.infrastructure.tables import pending as pending_table

# Bus messages a consumer takes at once (the messages consumer: as many as RabbitMQ lets one hold).
BATCH = 64
MESSAGES_BATCH = 256
# How long the messages consumer waits for a batch to fill: a batch costs the same three statements
# whatever it holds (mutes, pending states read and written for every recipient), so a busy group's
# messages fold into one write per member per linger instead of one each. At most half the grace, so
# a notification is never due later than one and a half graces after its message; 1 s by default.
MESSAGES_LINGER_SECONDS = 1.0


def messages_linger(timing: Timing) -> float:
    """How long the messages consumer lingers for this grace."""
    return min(MESSAGES_LINGER_SECONDS, timing.delay / 2)


# The channels: their `Dispatcher`, with their routes and background work on the stack.
ChannelsBuilder = Callable[[Infrastructure, AsyncExitStack], Awaitable[ChannelParts]]


@dataclass
class NotificationsService:
    """The wired decision half: its use cases, its scheduler and what it counts."""

    handlers: NotificationHandlers
    scheduler: Scheduler
    metrics: NotificationMetrics
    timing: Timing

    async def start(self, bus: MessageBus, stack: AsyncExitStack) -> None:
        """Run the scheduler and consume the bus until `stack` closes."""
        tasks = TaskSet()
        stack.push_async_callback(tasks.cancel_all)
        tasks.spawn(self.scheduler.run(), name="notifications.scheduler")
        consumers: list[tuple[str, list[str], BatchHandler, int, float]] = [
            (
                "notifications.messages",
                MESSAGE_KEYS,
                MessagesConsumer(self.handlers, self.metrics),
                MESSAGES_BATCH,
                messages_linger(self.timing),
            ),
            ("notifications.presence", [PRESENCE_CHANGED], PresenceConsumer(self.handlers), BATCH, 0.0),
            (
                "notifications.users",
                [USER_REGISTERED_KEY, USER_RENAMED_KEY, USER_DELETED_KEY],
                UsersConsumer(self.handlers),
                BATCH,
                0.0,
            ),
        ]
        for name, keys, consumer, batch, linger in consumers:
            subscription = await bus.subscribe(name, keys, consumer, max_batch=batch, linger=linger)
            stack.push_async_callback(subscription.close)


def wire_notifications(
    infra: Infrastructure, dispatcher: Dispatcher, clock: Clock | None = None
) -> NotificationsService:
    """Build the decision half on the process's engine, key-value store and clock, handing to `dispatcher`."""
    clock = clock or infra.clock
    settings = infra.settings
    timing = Timing(delay=settings.notifications_delay_seconds, window=settings.notifications_window_seconds)
    pending, memberships = SqlPendingStore(infra.engine), SqlMemberships(infra.engine)
    preferences, directory = SqlPreferences(infra.engine), SqlDirectory(infra.engine)
    statuses = KeyValueStatuses(infra.kv)
    metrics = NotificationMetrics(infra.metrics.registry)
    scheduler = Scheduler(
        pending, memberships, preferences, directory, statuses, dispatcher, clock, timing, counted=metrics.count
    )
    handlers = NotificationHandlers(
        pending, memberships, preferences, directory, statuses, clock, timing, wake=scheduler.wake
    )
    return NotificationsService(handlers, scheduler, metrics, timing)


async def build_notifications(
    infra: Infrastructure, stack: AsyncExitStack, channels: ChannelsBuilder = build_channels
) -> ServiceParts:
    """The notifications service: the channels (parlour/notifications/channels.py), the decision half's
    routes, consumers and scheduler (on `stack`), the schema checks."""
    parts = await channels(infra, stack)
    if parts.dispatcher is None:
        raise RuntimeError("the channels handed back no dispatcher")
    service = wire_notifications(infra, parts.dispatcher)
    await service.start(infra.bus, stack)

    async def schema_ready() -> None:
        await _check_schema(infra.engine)

    return ServiceParts(
        routers=[notifications_router(service.handlers), *parts.routers],
        readiness={"notifications.schema": schema_ready, **parts.readiness},
    )


async def _check_schema(engine: AsyncEngine) -> None:
    try:
        async with engine.connect() as connection:
            await connection.execute(select(pending_table.c.chat_id).limit(1))
    except Exception as error:
        raise Unavailable("The notifications tables are missing: run `parlour migrate`.") from error
