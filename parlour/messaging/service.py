"""Wires the messaging service from the process's infrastructure (called by the composition root)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.common.bus import MessageBus
from parlour.common.bus.background import TaskSet
from parlour.common.clock import Clock
from parlour.common.contracts import USER_DELETED_KEY, USER_REGISTERED_KEY
from parlour.common.errors import Unavailable
from parlour.common.metrics import Metrics
from parlour.common.service import Infrastructure, ServiceParts
from parlour.messaging.adapters.bus import (
    COMMAND_NAMES,
    MEMBERS_CHANGED_KEY,
    USERS_QUEUE,
    BusEventChannel,
    CommandConsumer,
    CommandMetrics,
    EventMetrics,
    KeyValueWriterRegistry,
    MembershipListener,
    UserProjector,
)
from parlour.messaging.adapters.http import messaging_router
from parlour.messaging.adapters.sql import SqlUnitOfWorkFactory
from parlour.messaging.adapters.users import HttpUserLookup
from parlour.messaging.application.access import MembershipCache
from parlour.messaging.application.chats import ChatHandlers, UserDirectory
from parlour.messaging.application.messages import MessageHandlers, new_id
from parlour.messaging.application.outbox import OutboxRelay
from parlour.messaging.application.ports import EventPublisher, UnitOfWorkFactory, UserLookup
from parlour.messaging.application.processor import CommandProcessor
from parlour.messaging.infrastructure.tables import chats

# Bus messages of one partition taken at once (each a gateway's `CommandBatch`): one transaction for all.
COMMAND_BATCH = 64


@dataclass
class Messaging:
    """The wired messaging service: its use cases, and the consumers `start` puts on the bus."""

    chats: ChatHandlers
    messages: MessageHandlers
    processor: CommandProcessor
    users: UserDirectory
    access: MembershipCache
    relay: OutboxRelay | None = None  # the process's outbox relay (tests that never start it pass none)

    async def start(
        self, bus: MessageBus, stack: AsyncExitStack, metrics: Metrics, *, max_batch: int = COMMAND_BATCH
    ) -> None:
        """Publish what the outbox holds, then consume commands, user events and membership changes until
        `stack` closes."""
        if self.relay is None:
            raise RuntimeError("a Messaging without its outbox relay cannot consume the bus")
        await self.relay.start()
        stack.push_async_callback(self.relay.stop)
        tasks = TaskSet()  # supervised: a relay that died would be logged, not lost
        stack.push_async_callback(tasks.cancel_all)
        tasks.spawn(self.relay.run(), name="messaging.outbox")
        route = await bus.open_route(MembershipListener(self.access))
        stack.push_async_callback(route.close)
        await route.bind(MEMBERS_CHANGED_KEY)
        users = await bus.subscribe(
            USERS_QUEUE, [USER_REGISTERED_KEY, USER_DELETED_KEY], UserProjector(self.users), max_batch=max_batch
        )
        stack.push_async_callback(users.close)
        consumer = CommandConsumer(self.processor, CommandMetrics(metrics.registry))
        commands = await bus.consume_commands(consumer, max_batch=max_batch)
        stack.push_async_callback(commands.close)


def wire_messaging(infra: Infrastructure) -> Messaging:
    """Build the messaging service on the process's engine, bus, key-value store, clock and HTTP client."""
    unit_of_work = SqlUnitOfWorkFactory(infra.engine)
    settings = infra.settings
    after_commit = _kill_self if settings.fault_kill_after_commit else None
    metrics = EventMetrics(infra.metrics.registry)
    relay = OutboxRelay(
        unit_of_work, BusEventChannel(infra.bus, metrics), KeyValueWriterRegistry(infra.kv), after_commit=after_commit
    )
    metrics.outbox_lag.set_function(relay.lag)  # read at scrape time: nothing on the hot path
    lookup = HttpUserLookup(infra.http, settings.resolved_auth_url)
    messaging = assemble_messaging(unit_of_work, infra.clock, relay, lookup, transactions=_transactions(infra))
    messaging.relay = relay
    return messaging


def assemble_messaging(
    unit_of_work: UnitOfWorkFactory,
    clock: Clock,
    events: EventPublisher,
    lookup: UserLookup,
    *,
    ids: Callable[[], str] = new_id,
    transactions: int = 1,
) -> Messaging:
    """The messaging use cases on the given ports: what `wire_messaging` builds for a process, and what the
    unit tests build on in-memory repositories, a recording publisher and a fixed user look-up."""
    access = MembershipCache(unit_of_work, clock)
    users = UserDirectory(unit_of_work, lookup)
    messages = MessageHandlers(unit_of_work, access, clock, ids)
    return Messaging(
        chats=ChatHandlers(unit_of_work, access, users, events, clock, ids),
        messages=messages,
        processor=CommandProcessor(unit_of_work, messages, events, COMMAND_NAMES, concurrency=transactions),
        users=users,
        access=access,
    )


def _transactions(infra: Infrastructure) -> int:
    # Transactions one worker runs at once: SQLite has one writer, so one; PostgreSQL locks rows, and the
    # batches of different partitions touch different chats, so two overlap their round trips and commits.
    return 1 if infra.engine.dialect.name == "sqlite" else 2


def _kill_self() -> None:
    # The fault-injection point of the outbox tests: die like a crash (no clean-up) after a commit,
    # before its publication.
    os.kill(os.getpid(), signal.SIGKILL)


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
