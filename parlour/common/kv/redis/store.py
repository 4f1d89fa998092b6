"""The Redis key-value store of distributed mode, shared by every process of a deployment.

Key layout (docs/architecture.md, "Key-value store"): every key is `{namespace}:{key}`.
Values and counters are strings; a member set is a sorted set scored by each member's expiry time; a
hash with per-field expiry (Redis 7.0 has no HEXPIRE) is a hash of values at `{namespace}:{key}` plus a
sorted set of field expiries at `{namespace}:{key}:~expiries`. Member and field expiries come from the
server's `TIME` inside Lua scripts, so processes with skewed clocks agree; each script prunes expired
items and keeps the key's own expiry at its last item's, so nothing outlives its entries.

Connection failures become `Unavailable`; a key holding another kind of value raises `TypeError`.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, assert_never, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from parlour.common.errors import Unavailable
from parlour.common.kv.port import (
    AddMember,
    Counter,
    DeleteKey,
    KeyValueStore,
    PutField,
    RemoveMember,
    SetValue,
    Write,
)

_INDEX_SUFFIX = ":~expiries"
_SCAN_BATCH = 500

# Milliseconds on the server's clock. Scripts may call TIME before writing: Redis 7 replicates a
# script's effects, not the script.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Keeps a sorted set's key (and its companion, if any) until its latest score, then lets it go.
_EXPIRE_WITH_LAST = """
local function expire_with_last(index, ...)
  local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if last[2] then
    for _, key in ipairs({index, ...}) do redis.call('PEXPIREAT', key, last[2]) end
  end
end
"""

# Several thousand arguments overflow Lua's stack in unpack(), so deletes go in slices.
_PRUNE_FIELDS = """
local function prune_fields(hash, index, now)
  local expired = redis.call('ZRANGE', index, '-inf', now, 'BYSCORE')
  for i = 1, #expired, 1000 do
    redis.call('HDEL', hash, unpack(expired, i, math.min(i + 999, #expired)))
  end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
end
"""

# A counter without expiry (first increment, or a plain value) starts its window here. MULTI with
# INCR, PEXPIRE NX and PTTL would do the same; the script keeps the rule in one readable place.
_INCREMENT = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""

_ADD_MEMBER = (
    _NOW
    + _EXPIRE_WITH_LAST
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
expire_with_last(KEYS[1])
"""
)

_REMOVE_MEMBER = (
    _NOW
    + _EXPIRE_WITH_LAST
    + """
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
expire_with_last(KEYS[1])
if tonumber(expires) > now then return 1 end
return 0
"""
)

_MEMBERS = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)

_PUT_FIELD = (
    _NOW
    + _EXPIRE_WITH_LAST
    + _PRUNE_FIELDS
    + """
prune_fields(KEYS[1], KEYS[2], now)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
expire_with_last(KEYS[2], KEYS[1])
"""
)

_REMOVE_FIELD = (
    _NOW
    + _EXPIRE_WITH_LAST
    + """
local expires = redis.call('ZSCORE', KEYS[2], ARGV[1])
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
expire_with_last(KEYS[2], KEYS[1])
if removed == 1 and expires and tonumber(expires) > now then return 1 end
return 0
"""
)

_FIELDS = (
    _NOW
    + _PRUNE_FIELDS
    + """
prune_fields(KEYS[1], KEYS[2], now)
return redis.call('HGETALL', KEYS[1])
"""
)


class RedisKeyValueStore(KeyValueStore):
    """The key-value store of distributed mode, every key under `{namespace}:`.

    Takes ownership of `client` (closed by `close()`). Expiry is judged by the Redis server's clock, the
    one every process shares, so this store takes no `Clock`.
    """

    def __init__(self, client: Redis, *, namespace: str) -> None:
        if not namespace:
            raise ValueError("namespace must not be empty: it keeps deployments and tests apart")
        self._client = client
        self._namespace = namespace
        self._increment = client.register_script(_INCREMENT)
        self._add_member = client.register_script(_ADD_MEMBER)
        self._remove_member = client.register_script(_REMOVE_MEMBER)
        self._members = client.register_script(_MEMBERS)
        self._put_field = client.register_script(_PUT_FIELD)
        self._remove_field = client.register_script(_REMOVE_FIELD)
        self._fields = client.register_script(_FIELDS)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        namespace: str,
        connect_timeout: float = 2.0,
        command_timeout: float = 5.0,
        max_connections: int = 64,
    ) -> RedisKeyValueStore:
        """A store on the Redis at `url`. Connects lazily: a Redis that is down shows in `ping()`."""
        # One quick retry recovers a pooled connection that died with a Redis restart; more would
        # only delay the `Unavailable` that readiness and callers need to see.
        retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=1)
        # A bounded pool that makes a burst wait for a free connection (up to the command timeout)
        # rather than fail: redis-py's default pool refuses outright once it is full.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=command_timeout,
            socket_connect_timeout=connect_timeout,
            socket_timeout=command_timeout,
            retry=retry,
        )
        return cls(Redis.from_pool(pool), namespace=namespace)

    async def set(self, key: str, value: bytes, ttl: float | None = None, *, only_if_absent: bool = False) -> bool:
        px = None if ttl is None else _milliseconds(ttl)
        with self._translated():
            written = await self._client.set(self._key(key), value, px=px, nx=only_if_absent)
        return bool(written)

    async def get(self, key: str) -> bytes | None:
        with self._translated():
            value = await self._client.get(self._key(key))
        return cast("bytes | None", value)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with self._translated():
            values = await self._client.mget([self._key(key) for key in keys])
        return cast("list[bytes | None]", values)

    async def take(self, key: str) -> bytes | None:
        with self._translated():
            value = await self._client.getdel(self._key(key))
        return cast("bytes | None", value)

    async def delete(self, key: str) -> bool:
        name = self._key(key)
        with self._translated():
            removed: int = await self._client.delete(name, name + _INDEX_SUFFIX)
        return removed > 0

    async def increment(self, key: str, ttl: float) -> Counter:
        window = _milliseconds(ttl)
        with self._translated():
            count, left = await self._increment(keys=[self._key(key)], args=[window])
        return Counter(int(count), int(left) / 1000)

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        window = _milliseconds(ttl)
        with self._translated():
            await self._add_member(keys=[self._key(key)], args=[member, window])

    async def remove_member(self, key: str, member: str) -> bool:
        with self._translated():
            removed = await self._remove_member(keys=[self._key(key)], args=[member])
        return bool(removed)

    async def members(self, key: str) -> builtins.set[str]:
        with self._translated():
            names: list[bytes] = await self._members(keys=[self._key(key)])
        return {name.decode() for name in names}

    async def put_field(self, key: str, field: str, value: bytes, ttl: float) -> None:
        window = _milliseconds(ttl)
        with self._translated():
            await self._put_field(keys=self._hash_keys(key), args=[field, value, window])

    async def remove_field(self, key: str, field: str) -> bool:
        with self._translated():
            removed = await self._remove_field(keys=self._hash_keys(key), args=[field])
        return bool(removed)

    async def fields(self, key: str) -> dict[str, bytes]:
        with self._translated():
            flat: list[bytes] = await self._fields(keys=self._hash_keys(key))
        return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}

    async def fields_many(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        if not keys:
            return []
        with self._translated():
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    await self._fields(keys=self._hash_keys(key), client=pipe)
                replies: list[list[bytes]] = await pipe.execute()
        return [{flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)} for flat in replies]

    async def write_many(self, writes: Sequence[Write]) -> None:
        if not writes:
            return
        with self._translated():
            # Not MULTI: each script is atomic already, and a pipeline is one round trip either way.
            async with self._client.pipeline(transaction=False) as pipe:
                for write in writes:
                    await self._queue(pipe, write)
                await pipe.execute()

    async def _queue(self, pipe: Any, write: Write) -> None:
        match write:
            case SetValue(key, value, ttl):
                pipe.set(self._key(key), value, px=None if ttl is None else _milliseconds(ttl))
            case DeleteKey(key):
                name = self._key(key)
                pipe.delete(name, name + _INDEX_SUFFIX)
            case AddMember(key, member, ttl):
                await self._add_member(keys=[self._key(key)], args=[member, _milliseconds(ttl)], client=pipe)
            case RemoveMember(key, member):
                await self._remove_member(keys=[self._key(key)], args=[member], client=pipe)
            case PutField(key, field, value, ttl):
                await self._put_field(keys=self._hash_keys(key), args=[field, value, _milliseconds(ttl)], client=pipe)
            case _:
                assert_never(write)

    @property
    def namespace(self) -> str:
        """The prefix (before its ":") of every key this store writes."""
        return self._namespace

    async def ping(self) -> None:
        """Raise `Unavailable` unless Redis answers."""
        with self._translated():
            await self._client.ping()

    async def close(self) -> None:
        """Close the client and its connections."""
        await self._client.aclose()

    async def delete_namespace(self) -> int:
        """Delete every key of this store's namespace (tests and teardown); returns how many."""
        deleted = 0
        batch: list[Any] = []
        with self._translated():
            async for name in self._client.scan_iter(match=self._pattern(), count=_SCAN_BATCH):
                batch.append(name)
                if len(batch) >= _SCAN_BATCH:
                    deleted += await self._client.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += await self._client.unlink(*batch)
        return deleted

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{key}"

    def _hash_keys(self, key: str) -> list[str]:
        name = self._key(key)
        return [name, name + _INDEX_SUFFIX]

    def _pattern(self) -> str:
        escaped = "".join("\\" + char if char in "*?[]\\" else char for char in self._namespace)
        return escaped + ":*"

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, ReadOnlyError) as exc:
            raise Unavailable(f"Redis is unavailable ({exc}): check that it runs, then try again.") from exc
        except ResponseError as exc:
            if _is_wrong_kind(exc):
                raise TypeError(f"a key of namespace {self._namespace!r} holds another kind of value") from exc
            raise


def _milliseconds(ttl: float) -> int:
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
    return max(1, round(ttl * 1000))


def _is_wrong_kind(exc: ResponseError) -> bool:
    message = str(exc)
    return "WRONGTYPE" in message or "not an integer" in message  # a pipeline prefixes the command
