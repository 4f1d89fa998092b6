"""Fixed-window rate limits and growing delays over the key-value store, shared by every process."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from parlour.common.errors import RateLimited
from parlour.common.kv import KeyValueStore


class RateLimiter:
    """Counts attempts per key in windows of `window` seconds and refuses past `limit`."""

    def __init__(self, kv: KeyValueStore, *, prefix: str) -> None:
        self._kv = kv
        self._prefix = prefix

    async def hit(self, key: str, *, limit: int, window: float, error: type[RateLimited] = RateLimited) -> None:
        """Count one attempt for `key`; raise `error` (with `retry_after`) when over `limit`."""
        counter = await self._kv.increment(f"{self._prefix}:{key}", window)
        if counter.value > limit:
            raise error(retry_after=max(1, math.ceil(counter.expires_in)))


class GrowingDelay:
    """Slows down attempts on a key after failures: no lock-out, a wait that doubles with each failure.

    The first `free` failures in a window of `window` seconds cost nothing; after them every attempt
    waits `base * 2 ** (failures - free - 1)` seconds, at most `cap`, whoever makes it and whatever its
    outcome (so the wait says nothing about the answer to come). The window restarts with the first
    failure after it ends.
    """

    def __init__(
        self,
        kv: KeyValueStore,
        *,
        prefix: str,
        free: int,
        base: float,
        cap: float,
        window: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._kv = kv
        self._prefix = prefix
        self._free = free
        self._base = base
        self._cap = cap
        self._window = window
        self._sleep = sleep

    def delay_after(self, failures: int) -> float:
        """The wait in force after `failures` failures."""
        if failures <= self._free:
            return 0.0
        return min(self._cap, self._base * 2.0 ** min(failures - self._free - 1, 64))

    async def wait(self, key: str) -> float:
        """Wait as long as `key`'s recent failures ask; returns the seconds waited."""
        stored = await self._kv.get(f"{self._prefix}:{key}")
        delay = self.delay_after(int(stored) if stored else 0)
        if delay > 0:
            await self._sleep(delay)
        return delay

    async def failed(self, key: str) -> None:
        """Count one failure for `key`."""
        await self._kv.increment(f"{self._prefix}:{key}", self._window)
