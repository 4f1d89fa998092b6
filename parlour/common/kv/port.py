"""The key-value store port: short-lived shared state (one-time passes, rate limits, presence, leases).

Every implementation passes the one contract suite in tests/contract/test_key_value_store.py.
Keys are namespaced by the implementation (its `namespace` argument); callers pass bare keys.
TTLs are seconds (floats allowed); an entry is invisible from the moment it expires.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Counter:
    """The value of a counter after an increment and the seconds until it resets."""

    value: int
    expires_in: float


class KeyValueStore(ABC):
    """Shared, expiring state. Every operation is atomic on its own."""

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None = None, *, only_if_absent: bool = False) -> bool:
        """Store `value` under `key`, expiring after `ttl` seconds (never when None).

        With `only_if_absent`, nothing is written if a live entry exists; returns whether it was written.
        """

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The live value under `key`, or None."""

    @abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The live value under each key, in order: one round trip. None where there is no value, also for
        a key that holds a set, a hash or nothing (like Redis's MGET, which never refuses a kind)."""

    @abstractmethod
    async def take(self, key: str) -> bytes | None:
        """Atomically read and delete `key`: of concurrent callers, exactly one gets the value."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove `key`; returns whether a live entry was removed."""

    @abstractmethod
    async def increment(self, key: str, ttl: float) -> Counter:
        """Add one to the counter at `key`; the first increment starts its `ttl` window."""

    @abstractmethod
    async def add_member(self, key: str, member: str, ttl: float) -> None:
        """Put `member` in the set at `key`, to expire `ttl` seconds from now (refreshes if present)."""

    @abstractmethod
    async def remove_member(self, key: str, member: str) -> bool:
        """Remove `member` from the set at `key`; returns whether it was a live member."""

    @abstractmethod
    async def members(self, key: str) -> builtins.set[str]:
        """The live members of the set at `key`."""

    @abstractmethod
    async def put_field(self, key: str, field: str, value: bytes, ttl: float) -> None:
        """Set `field` of the hash at `key` to `value`, the field expiring `ttl` seconds from now."""

    @abstractmethod
    async def remove_field(self, key: str, field: str) -> bool:
        """Remove `field` from the hash at `key`; returns whether it was live."""

    @abstractmethod
    async def fields(self, key: str) -> dict[str, bytes]:
        """The live fields of the hash at `key`."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise `Unavailable` if the store cannot be reached (readiness)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""
