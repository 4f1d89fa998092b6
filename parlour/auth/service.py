"""Wires the auth service from the process's infrastructure (called by the composition root)."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import structlog

from parlour.auth.adapters.events import BusUserEvents
from parlour.auth.adapters.http import auth_router
from parlour.auth.adapters.sql import SqlAuthUnitOfWork
from parlour.auth.application.handlers import AuthHandlers, LoginLimits
from parlour.auth.infrastructure.hashing import Argon2PasswordHasher
from parlour.auth.infrastructure.images import PillowAvatarEncoder
from parlour.auth.infrastructure.keys import JwtAccessTokenIssuer, KeyRingJwksSource, SigningKeyRing
from parlour.common.clock import Clock
from parlour.common.ratelimit import GrowingDelay, RateLimiter
from parlour.common.revocations import Revocations
from parlour.common.service import Infrastructure, ServiceParts
from parlour.common.settings import Settings
from parlour.common.tokens import JwksSource

# How often auth checks that the key-value store still holds the revocations (a restart empties Redis).
REVOCATIONS_CHECK_SECONDS = 0.5
logger = structlog.get_logger(__name__)


@dataclass
class AuthParts(ServiceParts):
    """Auth's parts, and its key ring as a JWKS source: a process that runs auth verifies tokens from it
    directly, where every other process fetches the JWKS over HTTP."""

    jwks_source: JwksSource | None = None


def signing_key_ring(settings: Settings, clock: Clock) -> SigningKeyRing:
    """The signing keys of this deployment, in its data folder."""
    retire_after = settings.access_token_ttl_seconds + settings.token_leeway_seconds
    return SigningKeyRing(settings.keys_dir, clock, retire_after_seconds=retire_after)


async def build_auth(infra: Infrastructure, stack: AsyncExitStack) -> ServiceParts:
    """The auth service: its routes, and its key ring as this process's JWKS source."""
    settings = infra.settings
    ring = signing_key_ring(settings, infra.clock)
    ring.ensure()
    handlers = AuthHandlers(
        unit_of_work=partial(SqlAuthUnitOfWork, infra.engine),
        hasher=Argon2PasswordHasher(
            time_cost=settings.password_time_cost,
            memory_kib=settings.password_memory_kib,
            parallelism=settings.password_parallelism,
        ),
        issuer=JwtAccessTokenIssuer(
            ring,
            infra.clock,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        ),
        events=BusUserEvents(infra.bus),
        limiter=RateLimiter(infra.kv, prefix="auth.login"),
        limits=LoginLimits(
            per_username_address=settings.login_attempts_per_username_and_address,
            per_address=settings.login_attempts_per_address,
            window_seconds=settings.login_window_seconds,
        ),
        delay=GrowingDelay(
            infra.kv,
            prefix="auth.login.failures",
            free=settings.login_failures_before_delay,
            base=settings.login_delay_seconds,
            cap=settings.login_delay_max_seconds,
            window=settings.login_window_seconds,
        ),
        clock=infra.clock,
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        revocations=Revocations.of(infra.kv, settings),
        avatars=PillowAvatarEncoder(),
    )
    keeper = asyncio.create_task(keep_revocations(handlers, REVOCATIONS_CHECK_SECONDS), name="auth.revocations")
    stack.push_async_callback(_cancel, keeper)
    return AuthParts(routers=[auth_router(handlers, ring.jwks)], jwks_source=KeyRingJwksSource(ring))


async def keep_revocations(handlers: AuthHandlers, interval: float) -> None:
    """Every `interval` s, restore the revocations if the store lost them; failures are logged, never fatal."""
    while True:
        try:
            restored = await handlers.restore_revocations()
        except Exception:
            logger.warning("auth.revocations_unrestorable", exc_info=True)
        else:
            if restored:
                logger.warning("auth.revocations_restored", sessions=restored)
        await asyncio.sleep(interval)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
