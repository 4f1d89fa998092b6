"""Fixed-window rate limits over the key-value store, shared by every process of a deployment."""

from __future__ import annotations

import math

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
