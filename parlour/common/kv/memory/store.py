"""The in-memory key-value store: the production store of embedded mode, where one process holds it all.

No method awaits anything, so every operation is atomic on the event loop by construction. Expiry is
judged by the injected clock's monotonic time: a wall-clock step never revives or kills an entry, and
tests advance a `ManualClock` instead of sleeping. Expired entries are dropped when touched, and every
write also drops a bounded batch of them from an expiry heap, so memory stays bounded without a
background task. `max_entries` caps the number of keys; members and fields of one key are pruned as the
key grows.
"""

from __future__ import annotations

import builtins
import enum
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from parlour.common.clock import Clock
from parlour.common.errors import Unavailable
from parlour.common.kv.port import Counter, KeyValueStore

_NEVER = math.inf
# Expired entries one write drops at most: bounds the pause a write can cause when many expire together.
_SWEEP_BATCH = 64
# The heap keeps stale items (an entry re-set with a new expiry leaves its old one behind); past this
# slack over the live entries it is rebuilt, which costs O(n) once per n pushes.
_HEAP_SLACK = 1024


class _Kind(enum.Enum):
    SET = "set"
    HASH = "hash"


@dataclass(slots=True)
class _Collection:
    """A set (every value b"") or a hash whose items each expire on their own."""

    kind: _Kind
    items: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    prune_at: int = 8

    def put(self, name: str, value: bytes, expires_at: float, now: float) -> None:
        self.items[name] = (value, expires_at)
        # Pruning when the dict doubles keeps it within twice its live size at O(1) amortised per put.
        if len(self.items) >= self.prune_at:
            self.prune(now)

    def remove(self, name: str, now: float) -> bool:
        item = self.items.pop(name, None)
        return item is not None and item[1] > now

    def prune(self, now: float) -> None:
        self.items = {name: item for name, item in self.items.items() if item[1] > now}
        self.prune_at = 2 * len(self.items) + 8

    def live(self, now: float) -> dict[str, bytes]:
        self.prune(now)
        return {name: value for name, (value, _) in self.items.items()}


@dataclass(slots=True)
class _Entry:
    value: bytes | _Collection
    expires_at: float  # for a collection: at or after its last item's expiry


class InMemoryKeyValueStore(KeyValueStore):
    """The key-value store of embedded mode: a dict in this process, expiring by `clock`.

    Holds at most `max_entries` live keys; a write that would add one more raises `Unavailable`.
    A key holding one kind of value (bytes or counter, set, hash) refuses the operations of another
    kind with `TypeError`, as Redis does; `set` and `delete` work on any kind.
    """

    def __init__(self, clock: Clock, *, max_entries: int = 1_000_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._expiries: list[tuple[float, str]] = []  # a heap of (expires_at, key), stale items allowed

    async def set(self, key: str, value: bytes, ttl: float | None = None, *, only_if_absent: bool = False) -> bool:
        now = self._now()
        expires_at = _NEVER if ttl is None else now + _checked(ttl)
        if self._live(key, now) is not None:
            if only_if_absent:
                return False
            del self._entries[key]
        self._insert(key, _Entry(value, expires_at), now)
        return True

    async def get(self, key: str) -> bytes | None:
        entry = self._live(key, self._now())
        return None if entry is None else _blob(entry, key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._now()
        entries = [self._live(key, now) for key in keys]
        return [entry.value if entry is not None and isinstance(entry.value, bytes) else None for entry in entries]

    async def take(self, key: str) -> bytes | None:
        entry = self._live(key, self._now())
        if entry is None:
            return None
        value = _blob(entry, key)
        del self._entries[key]
        return value

    async def delete(self, key: str) -> bool:
        if self._live(key, self._now()) is None:
            return False
        del self._entries[key]
        return True

    async def increment(self, key: str, ttl: float) -> Counter:
        now = self._now()
        window = _checked(ttl)
        entry = self._live(key, now)
        if entry is None:
            entry = self._insert(key, _Entry(b"1", now + window), now)
            return Counter(1, window)
        count = _count(entry, key) + 1
        entry.value = str(count).encode()
        if entry.expires_at == _NEVER:  # a plain value without expiry: this increment starts the window
            self._expire_at(key, entry, now + window)
        self._sweep(now, _SWEEP_BATCH)
        return Counter(count, entry.expires_at - now)

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        self._put_item(key, _Kind.SET, member, b"", ttl)

    async def remove_member(self, key: str, member: str) -> bool:
        return self._remove_item(key, _Kind.SET, member)

    async def members(self, key: str) -> builtins.set[str]:
        return set(self._items(key, _Kind.SET))

    async def put_field(self, key: str, field: str, value: bytes, ttl: float) -> None:
        self._put_item(key, _Kind.HASH, field, value, ttl)

    async def remove_field(self, key: str, field: str) -> bool:
        return self._remove_item(key, _Kind.HASH, field)

    async def fields(self, key: str) -> dict[str, bytes]:
        return self._items(key, _Kind.HASH)

    async def ping(self) -> None:
        """Always reachable: the store lives in this process."""

    def _now(self) -> float:
        return self._clock.monotonic()

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    def _insert(self, key: str, entry: _Entry, now: float) -> _Entry:
        self._sweep(now, _SWEEP_BATCH)
        if len(self._entries) >= self._max_entries:
            self._sweep(now, len(self._expiries))
            if len(self._entries) >= self._max_entries:
                raise Unavailable(
                    f"The in-memory key-value store is full ({self._max_entries} live keys): "
                    "raise max_entries, or run in distributed mode with Redis."
                )
        self._entries[key] = entry
        if entry.expires_at != _NEVER:
            heapq.heappush(self._expiries, (entry.expires_at, key))
        return entry

    def _expire_at(self, key: str, entry: _Entry, expires_at: float) -> None:
        entry.expires_at = expires_at
        heapq.heappush(self._expiries, (expires_at, key))

    def _sweep(self, now: float, limit: int) -> None:
        heap = self._expiries
        while heap and limit > 0 and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            self._live(key, now)  # drops the entry only if it is really expired, not re-set since
            limit -= 1
        if len(heap) > 2 * len(self._entries) + _HEAP_SLACK:
            self._expiries = [(e.expires_at, k) for k, e in self._entries.items() if e.expires_at != _NEVER]
            heapq.heapify(self._expiries)

    def _put_item(self, key: str, kind: _Kind, name: str, value: bytes, ttl: float) -> None:
        now = self._now()
        expires_at = now + _checked(ttl)
        entry = self._live(key, now)
        if entry is None:
            entry = self._insert(key, _Entry(_Collection(kind), expires_at), now)
        else:
            self._sweep(now, _SWEEP_BATCH)
        _collection(entry, kind, key).put(name, value, expires_at, now)
        if expires_at > entry.expires_at:
            self._expire_at(key, entry, expires_at)

    def _remove_item(self, key: str, kind: _Kind, name: str) -> bool:
        now = self._now()
        entry = self._live(key, now)
        if entry is None:
            return False
        collection = _collection(entry, kind, key)
        removed = collection.remove(name, now)
        if not collection.items:  # like Redis, an empty set or hash is no key at all
            del self._entries[key]
        return removed

    def _items(self, key: str, kind: _Kind) -> dict[str, bytes]:
        now = self._now()
        entry = self._live(key, now)
        if entry is None:
            return {}
        items = _collection(entry, kind, key).live(now)
        if not items:
            del self._entries[key]
        return items


def _checked(ttl: float) -> float:
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
    return ttl


def _blob(entry: _Entry, key: str) -> bytes:
    if isinstance(entry.value, _Collection):
        raise TypeError(f"key {key!r} holds a {entry.value.kind.value}, not a value")
    return entry.value


def _count(entry: _Entry, key: str) -> int:
    blob = _blob(entry, key)
    try:
        return int(blob)
    except ValueError:
        raise TypeError(f"key {key!r} holds a value that is not a counter") from None


def _collection(entry: _Entry, kind: _Kind, key: str) -> _Collection:
    value = entry.value
    if not isinstance(value, _Collection) or value.kind is not kind:
        held = "a value" if isinstance(value, bytes) else f"a {value.kind.value}"
        raise TypeError(f"key {key!r} holds {held}, not a {kind.value}")
    return value
