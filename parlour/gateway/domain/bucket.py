"""A token bucket: a steady rate with a burst allowance, driven by the caller's clock."""

from __future__ import annotations

import math


class TokenBucket:
    """Holds up to `burst` tokens, refilled at `rate` per second; each action takes one.

    Time comes in as an argument (monotonic seconds), so the bucket is pure and tests move time by hand.
    """

    __slots__ = ("_burst", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if not (rate > 0 and math.isfinite(rate)) or burst < 1:
            raise ValueError("a token bucket needs a positive finite rate and a burst of at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> bool:
        """Take one token if there is one; returns whether the action may go ahead."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def retry_after(self, now: float) -> float:
        """Seconds until the next token."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self._rate)

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._updated = now
