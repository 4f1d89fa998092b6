"""The composition root: builds every resource from settings and mode, and every service from those.

The CLI and the tests call the same `create_app`; tests pass `Overrides`. Resources open in pairs on one
`AsyncExitStack` (set up, then torn down in reverse), and nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import structlog
from fastapi import FastAPI

from parlour import __version__
from parlour.auth.service import AuthParts, build_auth
from parlour.common import tracing
from parlour.common.bus import MessageBus
from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.bus.background import TaskSet
from parlour.common.bus.instrumented import InstrumentedMessageBus, sample_queues
from parlour.common.bus.memory import InMemoryMessageBus
from parlour.common.clock import Clock, SystemClock
from parlour.common.db import check_database, create_engine, migrate
from parlour.common.http.client import service_http_client
from parlour.common.http.context import RequestContextMiddleware
from parlour.common.http.docs import docs_router
from parlour.common.http.headers import SecurityHeadersMiddleware
from parlour.common.http.limits import BodyLimitMiddleware, BodyLimits
from parlour.common.http.operations import MetricsAccess, ReadinessCheck, operations_router
from parlour.common.http.problems import install_problem_handlers
from parlour.common.kv import KeyValueStore
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.common.kv.redis import RedisKeyValueStore
from parlour.common.metrics import Metrics
from parlour.common.revocations import Revocations
from parlour.common.service import Infrastructure, ServiceBuilder, ServiceParts
from parlour.common.settings import Mode, Settings
from parlour.common.sqlite import WalCheckpointer, sqlite_file
from parlour.common.tokens import HttpJwksSource, JwksSource, TokenVerifier
from parlour.gateway.service import build_gateway
from parlour.messaging.service import build_messaging
from parlour.notifications.service import build_notifications
from parlour.presence.service import build_presence
from parlour.web.service import build_web

logger = structlog.get_logger(__name__)

# Every service a process can run. A new service is one line here.
SERVICES: dict[str, ServiceBuilder] = {
    "auth": build_auth,
    "gateway": build_gateway,
    "messaging": build_messaging,
    "notifications": build_notifications,
    "presence": build_presence,
    "web": build_web,
}


@dataclass(frozen=True)
class Overrides:
    """What tests may replace; everything else comes from settings."""

    clock: Clock | None = None
    migrate: bool | None = None
    # Wraps the process's bus: a test that must hold back or watch what is published at one hop.
    wrap_bus: Callable[[MessageBus], MessageBus] | None = None


def create_app(
    settings: Settings, services: Sequence[str] | None = None, overrides: Overrides | None = None
) -> FastAPI:
    """A FastAPI app serving `services` (all of them by default) with the shared HTTP edge."""
    names = list(services or SERVICES)
    unknown = set(names) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown services: {', '.join(sorted(unknown))}; known: {', '.join(SERVICES)}")
    overrides = overrides or Overrides()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            shutdown = tracing.enable_tracing(f"parlour-{names[0]}" if len(names) == 1 else "parlour")
            if shutdown is not None:
                stack.callback(shutdown)  # last out: flushes the spans of the shutdown itself
            infra = await open_infrastructure(settings, stack, metrics, overrides)
            if "messaging" in names:  # the commands' consumer samples the shared queues for everyone
                sampler = asyncio.create_task(sample_queues(infra.bus, metrics, settings.metrics_sample_seconds))
                stack.push_async_callback(_cancel, sampler)
            parts = [await SERVICES[name](infra, stack) for name in names]
            _mount(app, infra, parts)
            logger.info("parlour started", services=names, mode=settings.mode.value, version=__version__)
            yield
            logger.info("parlour stopping", services=names)

    app = FastAPI(
        title="Parlour",
        version=__version__,
        summary="Real-time chat: " + ", ".join(names),
        lifespan=lifespan,
        docs_url=None,  # served by `docs_router`: local files, its own Content-Security-Policy
        redoc_url=None,
    )
    app.include_router(docs_router("Parlour"))
    install_problem_handlers(app)
    # Added inside-out: the request context wraps the body limit, so a 413 is logged with its request id.
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits.of(settings))
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


async def open_infrastructure(
    settings: Settings, stack: AsyncExitStack, metrics: Metrics, overrides: Overrides
) -> Infrastructure:
    """Open the process's shared resources on `stack`, by mode."""
    clock = overrides.clock or SystemClock()
    engine = create_engine(settings.resolved_database_url)
    stack.push_async_callback(engine.dispose)
    if (database := sqlite_file(settings.resolved_database_url)) is not None:
        background = TaskSet()
        background.spawn(WalCheckpointer(database).run(), name="sqlite.checkpoint")
        stack.push_async_callback(background.cancel_all)
    should_migrate = overrides.migrate if overrides.migrate is not None else settings.mode is Mode.EMBEDDED
    if should_migrate:
        await migrate(engine)
    http = await stack.enter_async_context(service_http_client(settings))
    kv = await open_key_value_store(settings, clock)
    stack.push_async_callback(kv.close)
    opened = await open_message_bus(settings, clock, kv)
    bus = InstrumentedMessageBus(opened if overrides.wrap_bus is None else overrides.wrap_bus(opened), metrics)
    stack.push_async_callback(bus.close)
    return Infrastructure(settings, clock, metrics, engine, kv, bus, http)


async def open_key_value_store(settings: Settings, clock: Clock) -> KeyValueStore:
    """In memory in embedded mode, Redis in distributed mode."""
    if settings.mode is Mode.EMBEDDED:
        return InMemoryKeyValueStore(clock)
    return await RedisKeyValueStore.connect(settings.redis_url, namespace=settings.namespace)


async def open_message_bus(settings: Settings, clock: Clock, kv: KeyValueStore) -> MessageBus:
    """In memory in embedded mode, RabbitMQ in distributed mode."""
    if settings.mode is Mode.EMBEDDED:
        return InMemoryMessageBus(clock)
    return await AmqpMessageBus.connect(settings.amqp_url, namespace=settings.namespace, kv=kv, clock=clock)


def _mount(app: FastAPI, infra: Infrastructure, parts: list[ServiceParts]) -> None:
    local_source = next((part.jwks_source for part in parts if isinstance(part, AuthParts)), None)
    source: JwksSource = local_source or HttpJwksSource(
        infra.http, f"{infra.settings.resolved_auth_url}/auth/.well-known/jwks.json"
    )
    app.state.token_verifier = TokenVerifier(
        source,
        issuer=infra.settings.token_issuer,
        audience=infra.settings.token_audience,
        clock=infra.clock,
        leeway_seconds=infra.settings.token_leeway_seconds,
        cache_seconds=infra.settings.jwks_cache_seconds,
        revocations=Revocations.of(infra.kv, infra.settings),
    )
    checks: dict[str, ReadinessCheck] = {
        "database": lambda: check_database(infra.engine),
        "kv": infra.kv.ping,
        "bus": infra.bus.ping,
    }
    for part in parts:
        checks.update(part.readiness)
        for router in part.routers:
            app.include_router(router)
    access = MetricsAccess.of(infra.settings.metrics_allowed_addresses, infra.settings.metrics_token)
    app.include_router(operations_router(infra.metrics, checks, access))


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
