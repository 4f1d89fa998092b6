"""Wires the messaging service from the process's infrastructure (called by the composition root)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.common.bus import MessageBus
from parlour.common.contracts import USER_REGISTERED_KEY
from parlour.common.errors import Unavailable
from parlour.common.metrics import Metrics
from parlour.common.service import Infrastructure, ServiceParts
from parlour.messaging.adapters.bus import (
    MEMBERSHIP_KEY,
    USERS_QUEUE,
    BusEventPublisher,
    CommandConsumer,
    CommandMetrics,
    MembershipListener,
    UserProjector,
)
from parlour.messaging.adapters.http import messaging_router
from parlour.messaging.adapters.sql import SqlUnitOfWorkFactory
from parlour.messaging.adapters.users import HttpUserLookup
from parlour.messaging.application.access import MembershipCache
from parlour.messaging.application.chats import ChatHandlers, UserDirectory
from parlour.messaging.application.messages import MessageHandlers, new_id
from parlour.messaging.application.processor import CommandProcessor
from parlour.messaging.infrastructure.tables import chats

# Commands of one partition run in one transaction, up to this many (group commit; docs/benchmarks.md).
COMMAND_BATCH = 64


@dataclass
class Messaging:
    """The wired messaging service: its use cases, and the consumers `start` puts on the bus."""

    chats: ChatHandlers
    messages: MessageHandlers
    processor: CommandProcessor
    users: UserDirectory
    access: MembershipCache

    async def start(
        self, bus: MessageBus, stack: AsyncExitStack, metrics: Metrics, *, max_batch: int = COMMAND_BATCH
    ) -> None:
        """Consume commands, user events and membership changes until `stack` closes."""
        route = await bus.open_route(MembershipListener(self.access))
        stack.push_async_callback(route.close)
        await route.bind(MEMBERSHIP_KEY)
        users = await bus.subscribe(USERS_QUEUE, [USER_REGISTERED_KEY], UserProjector(self.users))
        stack.push_async_callback(users.close)
        consumer = CommandConsumer(self.processor, CommandMetrics(metrics.registry))
        commands = await bus.consume_commands(consumer, max_batch=max_batch)
        stack.push_async_callback(commands.close)


def wire_messaging(infra: Infrastructure) -> Messaging:
    """Build the messaging use cases on the process's engine, bus, clock and HTTP client."""
    unit_of_work = SqlUnitOfWorkFactory(infra.engine)
    access = MembershipCache(unit_of_work, infra.clock)
    events = BusEventPublisher(infra.bus)
    settings = infra.settings
    users = UserDirectory(unit_of_work, HttpUserLookup(infra.http, settings.resolved_auth_url))
    messages = MessageHandlers(unit_of_work, access, infra.clock)
    return Messaging(
        chats=ChatHandlers(unit_of_work, access, users, events, infra.clock, new_id),
        messages=messages,
        processor=CommandProcessor(unit_of_work, messages, events),
        users=users,
        access=access,
    )


async def build_messaging(infra: Infrastructure, stack: AsyncExitStack) -> ServiceParts:
    """The messaging service: its routes, its bus consumers (on `stack`), and a schema readiness check."""
    messaging = wire_messaging(infra)
    await messaging.start(infra.bus, stack, infra.metrics)

    async def schema_ready() -> None:
        await _check_schema(infra.engine)

    router = messaging_router(messaging.chats, messaging.messages, messaging.processor)
    return ServiceParts(routers=[router], readiness={"messaging.schema": schema_ready})


async def _check_schema(engine: AsyncEngine) -> None:
    try:
        async with engine.connect() as connection:
            await connection.execute(select(chats.c.id).limit(1))
    except Exception as error:
        raise Unavailable("The messaging tables are missing: run `parlour migrate`.") from error
