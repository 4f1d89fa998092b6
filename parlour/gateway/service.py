"""Wires the gateway from the process's infrastructure (called by the composition root).

Resources open in pairs on the exit stack, so they close in reverse: the delivery route (closed last),
the lease (given up after every session is gone), the ticker, the command flusher, the revocation
watcher and the lease renewal, then the drain (run first at shutdown, and on SIGTERM before
uvicorn closes the sockets).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from contextlib import AsyncExitStack

import structlog

from parlour.common.bus.background import TaskSet
from parlour.common.kv import KeyValueStore
from parlour.common.ratelimit import RateLimiter
from parlour.common.revocations import Revocations
from parlour.common.service import Infrastructure, ServiceParts
from parlour.common.settings import Settings
from parlour.gateway.adapters.bus import BusCommandSink, BusSessionEvents, delivery_handler
from parlour.gateway.adapters.codec import frame_info
from parlour.gateway.adapters.http import gateway_router
from parlour.gateway.adapters.websocket import ConnectionDeps, EndpointConfig, GatewayEndpoint
from parlour.gateway.application.batcher import CommandBatcher
from parlour.gateway.application.hub import Hub, admitted_auth_session
from parlour.gateway.application.lease import GatewayLease
from parlour.gateway.application.passes import PassBook, PassPolicy
from parlour.gateway.domain.errors import PassRejected
from parlour.gateway.domain.passes import PassHolder
from parlour.gateway.domain.session import SessionLimits
from parlour.gateway.infrastructure.metrics import GatewayMetrics
from parlour.gateway.infrastructure.signals import drain_before_sigterm

logger = structlog.get_logger(__name__)

# How often the hub looks at the clock for pings, missed pongs and stalled resumes.
TICK_SECONDS = 1.0
# How often the gateway reads the revoked sessions: a logged-out session's sockets close within this.
REVOCATION_POLL_SECONDS = 0.5


def session_limits(settings: Settings) -> SessionLimits:
    """The per-connection limits in force."""
    return SessionLimits(
        send_buffer_frames=settings.gateway_send_buffer_frames,
        send_buffer_bytes=settings.gateway_send_buffer_bytes,
        rate_per_second=settings.gateway_frames_per_second,
        rate_burst=settings.gateway_frame_burst,
        ping_interval=settings.gateway_ping_interval_seconds,
        ping_timeout=settings.gateway_ping_timeout_seconds,
        resume_timeout=settings.gateway_resume_timeout_seconds,
        max_frame_bytes=settings.gateway_max_frame_bytes,
    )


def gateway_id() -> str:
    """This process's name in session events: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def build_gateway(infra: Infrastructure, stack: AsyncExitStack) -> ServiceParts:
    """The gateway: passes, the WebSocket endpoint, and the hub on this process's delivery route."""
    settings, clock = infra.settings, infra.clock
    metrics = GatewayMetrics(infra.metrics.registry)
    hubs: list[Hub] = []
    route = await infra.bus.open_route(
        delivery_handler(lambda: hubs[0], metrics.delivered.inc, metrics.delivery_latency.observe),
        on_gap=lambda: _resync(hubs[0]),
    )
    stack.push_async_callback(route.close)
    name = gateway_id()
    session_events = BusSessionEvents(infra.bus, name, clock)
    hub = Hub(route, session_events, clock, frame_info)
    hubs.append(hub)
    # Leased before the first session opens, given up after the drain (the stack closes in reverse).
    lease = GatewayLease(infra.kv, name, settings.gateway_lease_ttl_seconds, clock, hub.resync)
    await lease.start()
    stack.push_async_callback(lease.release)

    tasks = TaskSet()
    stack.push_async_callback(tasks.cancel_all)
    tasks.spawn(hub.run_ticker(min(TICK_SECONDS, settings.gateway_ping_interval_seconds / 2)), name="gateway.ticker")
    batcher = CommandBatcher(BusCommandSink(infra.bus))
    tasks.spawn(batcher.run(), name="gateway.commands")
    tasks.spawn(session_events.run(), name="gateway.session_events")
    revocations = Revocations.of(infra.kv, settings)
    tasks.spawn(watch_revocations(hub, revocations, REVOCATION_POLL_SECONDS), name="gateway.revocations")
    tasks.spawn(lease.run(), name="gateway.lease")

    async def drain() -> None:
        await hub.drain(settings.gateway_drain_seconds)

    stack.push_async_callback(drain)
    drain_before_sigterm(drain, stack)

    passes = RevocationCheckedPassBook(
        revocations,
        infra.kv,
        RateLimiter(infra.kv, prefix="gateway.passes"),
        PassPolicy(
            ttl_seconds=settings.pass_ttl_seconds, issue_limit=settings.passes_per_minute, issue_window_seconds=60
        ),
    )
    origins = (*settings.resolved_public_origins, *settings.allowed_origins)
    config = EndpointConfig(session_limits(settings), origins)
    endpoint = GatewayEndpoint(passes, ConnectionDeps(hub, batcher, clock, metrics, config))
    return ServiceParts(routers=[gateway_router(passes, endpoint)])


class RevocationCheckedPassBook(PassBook):
    """Passes that a revoked login cannot redeem, and that tell the hub which login a connection is."""

    def __init__(self, revocations: Revocations, kv: KeyValueStore, limiter: RateLimiter, policy: PassPolicy) -> None:
        super().__init__(kv, limiter, policy)
        self._revocations = revocations

    async def redeem(self, secret: str | None) -> PassHolder:
        holder = await super().redeem(secret)
        if await self._revocations.is_revoked(holder.auth_session_id):
            raise PassRejected()
        admitted_auth_session.set(holder.auth_session_id)  # read by `Hub.attach`, in this connection's task
        return holder


async def watch_revocations(hub: Hub, revocations: Revocations, interval: float) -> None:
    """Every `interval` seconds, close the local sessions of revoked logins; failures are logged, never fatal."""
    while True:
        await asyncio.sleep(interval)
        try:
            hub.end_auth_sessions(await revocations.recent())
        except Exception:
            logger.warning("gateway.revocations_unreadable", exc_info=True)


async def _resync(hub: Hub) -> None:
    hub.resync()
