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
from typing import assert_never


@dataclass(frozen=True, slots=True)
class Counter:
    """The value of a counter after an increment and the seconds until it resets."""

    value: int
    expires_in: float


@dataclass(frozen=True, slots=True)
class SetValue:
    """`KeyValueStore.set` (unconditional) as one write of `write_many`."""

    key: str
    value: bytes
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class DeleteKey:
    """`KeyValueStore.delete` as one write of `write_many`."""

    key: str


@dataclass(frozen=True, slots=True)
class AddMember:
    """`KeyValueStore.add_member` as one write of `write_many`."""

    key: str
    member: str
    ttl: float


@dataclass(frozen=True, slots=True)
class RemoveMember:
    """`KeyValueStore.remove_member` as one write of `write_many`."""

    key: str
    member: str


@dataclass(frozen=True, slots=True)
class PutField:
    """`KeyValueStore.put_field` as one write of `write_many`."""

    key: str
    field: str
    value: bytes
    ttl: float


Write = SetValue | DeleteKey | AddMember | RemoveMember | PutField


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

    async def fields_many(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        """`fields` of each key, in order, in one round trip."""
        return [await self.fields(key) for key in keys]

    async def write_many(self, writes: Sequence[Write]) -> None:
        """Apply the writes in order, in one round trip. Each is atomic on its own, as its single method
        is; the whole is not: a failure part-way may leave the first ones applied."""
        for write in writes:
            match write:
                case SetValue(key, value, ttl):
                    await self.set(key, value, ttl)
                case DeleteKey(key):
                    await self.delete(key)
                case AddMember(key, member, ttl):
                    await self.add_member(key, member, ttl)
                case RemoveMember(key, member):
                    await self.remove_member(key, member)
                case PutField(key, field, value, ttl):
                    await self.put_field(key, field, value, ttl)
                case _:
                    assert_never(write)

    @abstractmethod
    async def ping(self) -> None:
        """Raise `Unavailable` if the store cannot be reached (readiness)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""
