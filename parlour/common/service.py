"""What the composition root hands each service, and what each service hands back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import httpx
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.common.bus import MessageBus
from parlour.common.clock import Clock
from parlour.common.http.operations import ReadinessCheck
from parlour.common.kv import KeyValueStore
from parlour.common.metrics import Metrics
from parlour.common.settings import Settings


@dataclass
class Infrastructure:
    """The shared resources of one process, opened by the composition root and closed by it."""

    settings: Settings
    clock: Clock
    metrics: Metrics
    engine: AsyncEngine
    kv: KeyValueStore
    bus: MessageBus
    http: httpx.AsyncClient


@dataclass
class ServiceParts:
    """A built service: its routes and its readiness checks. Background work goes on the exit stack.

    A service may hand back a subclass with more for the composition root (auth's `AuthParts` carries its
    key ring).
    """

    routers: list[APIRouter] = field(default_factory=list)
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)


ServiceBuilder = Callable[[Infrastructure, AsyncExitStack], Awaitable[ServiceParts]]
