"""Wires the presence service from the process's infrastructure (called by the composition root).

On the exit stack, in the order they close (reverse): the bus consumers (closed first), the flusher and
the sweep (supervised tasks), then nothing else: the state lives in the key-value store and the database.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.common.bus import BatchHandler, MessageBus
from parlour.common.bus.background import TaskSet, every
from parlour.common.clock import Clock
from parlour.common.contracts import PRESENCE_COMMANDS_KEY, SESSION_EVENTS
from parlour.common.errors import Unavailable
from parlour.common.service import Infrastructure, ServiceParts
from parlour.presence.adapters.bus import (
    MEMBERS_CHANGED_KEY,
    BusFrames,
    MembershipConsumer,
    PresenceMetrics,
    SessionConsumer,
)
from parlour.presence.adapters.http import presence_router
from parlour.presence.adapters.kv import KeyValuePresenceState
from parlour.presence.adapters.sql import SqlContacts, SqlPrivacySettings
from parlour.presence.application.contacts import MembershipView
from parlour.presence.application.fanout import Fanout
from parlour.presence.application.handlers import PresenceHandlers
from parlour.presence.infrastructure.tables import settings as settings_table

log = structlog.get_logger(__name__)

# How often the changes that gathered go out (at most one frame per watcher per interval).
FLUSH_SECONDS = 1.0
# How often the sweep looks for gateways whose lease lapsed.
SWEEP_SECONDS = 1.0
# How often the hidden flags are written again from the settings table (their entries expire).
MIRROR_SECONDS = 24 * 3600.0
# Bus messages a consumer takes at once, and how long a batch that is not full waits for more: presence's
# cost is per batch (three store round trips, one read of contacts, one publication: its CPU while 5,000
# sessions opened was the same 16 % of a core at 143 and at 219 openings/s with 50 ms, i.e. set by the
# batches per second) and its frames go out once a second anyway, so 200 ms buys batches of many openings.
BATCH = 256
LINGER_SECONDS = 0.2


@dataclass
class PresenceService:
    """The wired presence service: its use cases, its fan-out and what it counts."""

    handlers: PresenceHandlers
    fanout: Fanout
    metrics: PresenceMetrics

    async def start(self, bus: MessageBus, stack: AsyncExitStack) -> None:
        """Mirror the settings, then run the flusher and the sweep and consume the bus until `stack` closes."""
        await self.handlers.mirror_settings()
        tasks = TaskSet()
        stack.push_async_callback(tasks.cancel_all)
        tasks.spawn(self.fanout.run(), name="presence.flush")
        tasks.spawn(every(SWEEP_SECONDS, self._sweep, failure="presence.sweep_failed"), name="presence.sweep")
        tasks.spawn(
            every(MIRROR_SECONDS, self.handlers.mirror_settings, failure="presence.mirror_failed"),
            name="presence.mirror",
        )
        # Memberships do not linger: a new chat's members should hear of each other, and be each other's
        # contacts over REST, as soon as the chat exists.
        consumers: list[tuple[str, list[str], BatchHandler, float]] = [
            (
                "presence.sessions",
                [SESSION_EVENTS, PRESENCE_COMMANDS_KEY],
                SessionConsumer(self.handlers, self.metrics),
                LINGER_SECONDS,
            ),
            ("presence.memberships", [MEMBERS_CHANGED_KEY], MembershipConsumer(self.handlers), 0.0),
        ]
        for name, keys, consumer, linger in consumers:
            subscription = await bus.subscribe(name, keys, consumer, max_batch=BATCH, linger=linger)
            stack.push_async_callback(subscription.close)

    async def _sweep(self) -> None:
        self.metrics.lapsed_sessions.inc(await self.handlers.sweep())


def wire_presence(infra: Infrastructure, clock: Clock | None = None) -> PresenceService:
    """Build the presence service on the process's engine, key-value store, bus and clock."""
    clock = clock or infra.clock
    state = KeyValuePresenceState(infra.kv)
    contacts = MembershipView(SqlContacts(infra.engine), clock)
    metrics = PresenceMetrics(infra.metrics.registry)
    frames = BusFrames(infra.bus, metrics)
    fanout = Fanout(state, contacts, frames, clock, interval=FLUSH_SECONDS)
    handlers = PresenceHandlers(state, contacts, SqlPrivacySettings(infra.engine), frames, fanout, clock)
    return PresenceService(handlers, fanout, metrics)


async def build_presence(infra: Infrastructure, stack: AsyncExitStack) -> ServiceParts:
    """The presence service: its routes, its consumers and background tasks (on `stack`), a schema check."""
    presence = wire_presence(infra)
    await presence.start(infra.bus, stack)

    async def schema_ready() -> None:
        await _check_schema(infra.engine)

    return ServiceParts(routers=[presence_router(presence.handlers)], readiness={"presence.schema": schema_ready})


async def _check_schema(engine: AsyncEngine) -> None:
    try:
        async with engine.connect() as connection:
            await connection.execute(select(settings_table.c.user_id).limit(1))
    except Exception as error:
        raise Unavailable("The presence tables are missing: run `parlour migrate`.") from error
