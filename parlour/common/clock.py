"""Time as a port, so tests move it forward instead of sleeping."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime


class Clock(ABC):
    """Where every service reads the time from."""

    @abstractmethod
    def now(self) -> float:
        """Wall-clock time in seconds since the epoch (UTC)."""

    @abstractmethod
    def monotonic(self) -> float:
        """A clock that never goes back, for measuring intervals."""

    def utcnow(self) -> datetime:
        """`now()` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), tz=UTC)


class SystemClock(Clock):
    """The real clock, used in production."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock(Clock):
    """A clock that only moves when told to; for tests of expiry and backoff."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._monotonic = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds`."""
        self._now += seconds
        self._monotonic += seconds
