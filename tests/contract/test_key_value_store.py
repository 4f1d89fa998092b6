"""The key-value store contract: every test runs against every implementation of `KeyValueStore`.

Time is per implementation: the in-memory store reads a `ManualClock` that `advance()` moves; Redis
judges expiry by its own clock, so `advance()` polls the server's `TIME` until that much has passed,
and TTLs are a fraction of a second (`unit`).
"""

from __future__ import annotations

import asyncio
import socket
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from parlour.common.clock import ManualClock
from parlour.common.errors import Unavailable
from parlour.common.kv import AddMember, DeleteKey, KeyValueStore, PutField, RemoveMember, SetValue
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.common.kv.redis import RedisKeyValueStore
from tests.services import REDIS_URL, require, unique_namespace


class Harness(ABC):
    """A fresh store, a way to let time pass for it, and a TTL `unit` that is safe to act within."""

    store: KeyValueStore
    unit: float

    @abstractmethod
    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass as the store sees time."""

    @abstractmethod
    async def other_store(self) -> KeyValueStore:
        """A second store in another namespace, cleaned up with this one."""

    @abstractmethod
    async def close(self) -> None: ...


class MemoryHarness(Harness):
    unit = 10.0

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.store = InMemoryKeyValueStore(self.clock)

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def other_store(self) -> KeyValueStore:
        return InMemoryKeyValueStore(self.clock)

    async def close(self) -> None:
        await self.store.close()


class RedisHarness(Harness):
    # Long enough that a busy machine does not expire an entry between two steps of a test.
    unit = 0.25

    def __init__(self, store: RedisKeyValueStore) -> None:
        self.store = self.redis = store
        self._others: list[RedisKeyValueStore] = []
        self._clock_reader = Redis.from_url(REDIS_URL)

    @classmethod
    async def open(cls) -> RedisHarness:
        return cls(await _redis_store())

    async def advance(self, seconds: float) -> None:
        # Redis expires a key once its clock is strictly past the deadline, to the millisecond.
        deadline = await self._server_time() + seconds + 0.002
        async with asyncio.timeout(seconds + 5):
            # Nothing signals the passing of the server's time: polling its clock is the way to wait.
            while await self._server_time() <= deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def other_store(self) -> KeyValueStore:
        other = await _redis_store()
        self._others.append(other)
        return other

    async def close(self) -> None:
        for store in [self.redis, *self._others]:
            await store.delete_namespace()
            await store.close()
        await self._clock_reader.aclose()

    async def _server_time(self) -> float:
        seconds, micros = await self._clock_reader.time()
        return float(seconds) + micros / 1_000_000


async def _redis_store() -> RedisKeyValueStore:
    return await RedisKeyValueStore.connect(REDIS_URL, namespace=unique_namespace())


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    harness: Harness
    if request.param == "redis":
        require("redis")
        harness = await RedisHarness.open()
    else:
        harness = MemoryHarness()
    try:
        yield harness
    finally:
        await harness.close()


async def test_a_set_value_is_read_back(kv: Harness) -> None:
    assert await kv.store.set("greeting", b"hello")
    assert await kv.store.get("greeting") == b"hello"
    assert await kv.store.get("absent") is None


async def test_set_overwrites_and_clears_an_earlier_ttl(kv: Harness) -> None:
    await kv.store.set("k", b"one", ttl=kv.unit)
    await kv.store.set("k", b"two")
    await kv.advance(kv.unit * 1.2)
    assert await kv.store.get("k") == b"two"


async def test_a_value_expires_after_its_ttl(kv: Harness) -> None:
    await kv.store.set("k", b"v", ttl=kv.unit)
    assert await kv.store.get("k") == b"v"
    await kv.advance(kv.unit)
    assert await kv.store.get("k") is None


async def test_only_if_absent_writes_once_while_the_entry_lives(kv: Harness) -> None:
    assert await kv.store.set("lease", b"a", ttl=kv.unit, only_if_absent=True)
    assert not await kv.store.set("lease", b"b", ttl=kv.unit, only_if_absent=True)
    assert await kv.store.get("lease") == b"a"
    await kv.advance(kv.unit)
    assert await kv.store.set("lease", b"c", ttl=kv.unit, only_if_absent=True)
    assert await kv.store.get("lease") == b"c"


@pytest.mark.parametrize("ttl", [0, -1.0, float("inf"), float("nan")])
async def test_a_ttl_must_be_a_positive_number_of_seconds(kv: Harness, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await kv.store.set("k", b"v", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await kv.store.increment("n", ttl)
    with pytest.raises(ValueError, match="ttl"):
        await kv.store.add_member("s", "m", ttl)


async def test_get_many_reads_each_live_value_in_order_in_one_call(kv: Harness) -> None:
    await kv.store.set("a", b"1")
    await kv.store.set("b", b"2", ttl=kv.unit)
    await kv.store.set("c", b"3", ttl=kv.unit * 8)
    await kv.store.add_member("set", "m", kv.unit * 8)
    assert await kv.store.get_many(["c", "absent", "a", "b", "a"]) == [b"3", None, b"1", b"2", b"1"]
    await kv.advance(kv.unit)
    assert await kv.store.get_many(["a", "b", "c", "set"]) == [b"1", None, b"3", None]
    assert await kv.store.get_many([]) == []


async def test_get_many_reads_a_thousand_keys(kv: Harness) -> None:
    keys = [f"k{i}" for i in range(1000)]
    for key in keys[::2]:
        await kv.store.set(key, key.encode())
    values = await kv.store.get_many(keys)
    assert values == [key.encode() if i % 2 == 0 else None for i, key in enumerate(keys)]


async def test_take_returns_the_value_once(kv: Harness) -> None:
    await kv.store.set("pass", b"user-1", ttl=kv.unit)
    assert await kv.store.take("pass") == b"user-1"
    assert await kv.store.take("pass") is None
    assert await kv.store.get("pass") is None


async def test_take_of_an_expired_value_returns_nothing(kv: Harness) -> None:
    await kv.store.set("pass", b"user-1", ttl=kv.unit)
    await kv.advance(kv.unit)
    assert await kv.store.take("pass") is None


async def test_of_fifty_concurrent_takes_exactly_one_gets_the_value(kv: Harness) -> None:
    await kv.store.set("pass", b"user-1", ttl=60)
    results = await asyncio.gather(*(kv.store.take("pass") for _ in range(50)))
    assert [r for r in results if r is not None] == [b"user-1"]


async def test_delete_says_whether_a_live_entry_was_removed(kv: Harness) -> None:
    await kv.store.set("k", b"v")
    assert await kv.store.delete("k")
    assert not await kv.store.delete("k")
    assert await kv.store.get("k") is None
    await kv.store.set("short", b"v", ttl=kv.unit)
    await kv.advance(kv.unit)
    assert not await kv.store.delete("short")


async def test_delete_removes_sets_and_hashes_too(kv: Harness) -> None:
    await kv.store.add_member("s", "m", kv.unit)
    await kv.store.put_field("h", "f", b"v", kv.unit)
    assert await kv.store.delete("s")
    assert await kv.store.delete("h")
    assert await kv.store.members("s") == set()
    assert await kv.store.fields("h") == {}


async def test_increment_counts_within_one_window(kv: Harness) -> None:
    first = await kv.store.increment("hits", kv.unit * 4)
    assert first.value == 1
    assert 0 < first.expires_in <= kv.unit * 4
    assert [(await kv.store.increment("hits", kv.unit * 4)).value for _ in range(3)] == [2, 3, 4]


async def test_later_increments_keep_the_first_window(kv: Harness) -> None:
    await kv.store.increment("hits", kv.unit * 2)
    await kv.advance(kv.unit)
    second = await kv.store.increment("hits", kv.unit * 2)
    assert second.value == 2
    assert 0 < second.expires_in <= kv.unit + 0.01


async def test_a_counter_starts_again_after_its_window(kv: Harness) -> None:
    await kv.store.increment("hits", kv.unit)
    await kv.store.increment("hits", kv.unit)
    await kv.advance(kv.unit)
    fresh = await kv.store.increment("hits", kv.unit)
    assert fresh.value == 1
    assert kv.unit * 0.5 < fresh.expires_in <= kv.unit


async def test_incrementing_a_value_without_expiry_starts_a_window(kv: Harness) -> None:
    await kv.store.set("hits", b"5")
    counter = await kv.store.increment("hits", kv.unit)
    assert counter.value == 6
    assert 0 < counter.expires_in <= kv.unit
    await kv.advance(kv.unit)
    assert await kv.store.get("hits") is None


async def test_concurrent_increments_are_all_counted(kv: Harness) -> None:
    await asyncio.gather(*(kv.store.increment("hits", 60) for _ in range(50)))
    assert (await kv.store.increment("hits", 60)).value == 51
    assert await kv.store.get("hits") == b"51"


async def test_members_expire_each_on_their_own(kv: Harness) -> None:
    await kv.store.add_member("online", "ada", kv.unit)
    await kv.store.add_member("online", "bob", kv.unit * 3)
    assert await kv.store.members("online") == {"ada", "bob"}
    await kv.advance(kv.unit)
    assert await kv.store.members("online") == {"bob"}
    await kv.advance(kv.unit * 2)
    assert await kv.store.members("online") == set()


async def test_adding_a_member_again_refreshes_its_expiry(kv: Harness) -> None:
    await kv.store.add_member("online", "ada", kv.unit)
    await kv.advance(kv.unit * 0.6)
    await kv.store.add_member("online", "ada", kv.unit)
    await kv.advance(kv.unit * 0.6)
    assert await kv.store.members("online") == {"ada"}
    await kv.advance(kv.unit * 0.5)
    assert await kv.store.members("online") == set()


async def test_remove_member_says_whether_it_was_live(kv: Harness) -> None:
    await kv.store.add_member("online", "ada", kv.unit * 4)
    await kv.store.add_member("online", "bob", kv.unit)
    assert await kv.store.remove_member("online", "ada")
    assert not await kv.store.remove_member("online", "ada")
    assert not await kv.store.remove_member("nobody", "ada")
    await kv.advance(kv.unit)
    assert not await kv.store.remove_member("online", "bob")
    assert await kv.store.members("online") == set()


async def test_fields_expire_each_on_their_own(kv: Harness) -> None:
    await kv.store.put_field("sessions", "s1", b"gw-1", kv.unit)
    await kv.store.put_field("sessions", "s2", b"gw-2", kv.unit * 3)
    assert await kv.store.fields("sessions") == {"s1": b"gw-1", "s2": b"gw-2"}
    await kv.advance(kv.unit)
    assert await kv.store.fields("sessions") == {"s2": b"gw-2"}
    await kv.advance(kv.unit * 2)
    assert await kv.store.fields("sessions") == {}


async def test_putting_a_field_again_replaces_its_value_and_refreshes_it(kv: Harness) -> None:
    await kv.store.put_field("sessions", "s1", b"gw-1", kv.unit)
    await kv.advance(kv.unit * 0.6)
    await kv.store.put_field("sessions", "s1", b"gw-2", kv.unit)
    await kv.advance(kv.unit * 0.6)
    assert await kv.store.fields("sessions") == {"s1": b"gw-2"}
    await kv.advance(kv.unit * 0.5)
    assert await kv.store.fields("sessions") == {}


async def test_remove_field_says_whether_it_was_live(kv: Harness) -> None:
    await kv.store.put_field("sessions", "s1", b"gw-1", kv.unit * 4)
    await kv.store.put_field("sessions", "s2", b"gw-1", kv.unit)
    assert await kv.store.remove_field("sessions", "s1")
    assert not await kv.store.remove_field("sessions", "s1")
    assert not await kv.store.remove_field("nothing", "s1")
    await kv.advance(kv.unit)
    assert not await kv.store.remove_field("sessions", "s2")
    assert await kv.store.fields("sessions") == {}


async def test_fields_many_reads_each_hash_in_order_and_an_absent_one_as_empty(kv: Harness) -> None:
    await kv.store.put_field("a", "s1", b"1", kv.unit)
    await kv.store.put_field("b", "s2", b"2", kv.unit * 3)
    await kv.store.put_field("b", "s3", b"3", kv.unit)
    assert await kv.store.fields_many(["b", "absent", "a"]) == [{"s2": b"2", "s3": b"3"}, {}, {"s1": b"1"}]
    await kv.advance(kv.unit)
    assert await kv.store.fields_many(["a", "b"]) == [{}, {"s2": b"2"}]
    assert await kv.store.fields_many([]) == []


async def test_write_many_applies_every_kind_of_write_in_order(kv: Harness) -> None:
    await kv.store.set("gone", b"x")
    await kv.store.add_member("set", "old", kv.unit * 3)
    await kv.store.write_many(
        [
            SetValue("value", b"one"),
            SetValue("value", b"two", kv.unit),
            SetValue("lasting", b"v"),
            DeleteKey("gone"),
            AddMember("set", "new", kv.unit),
            RemoveMember("set", "old"),
            PutField("hash", "f", b"first", kv.unit * 3),
            PutField("hash", "f", b"second", kv.unit),
            PutField("hash", "g", b"g", kv.unit * 3),
        ]
    )
    assert await kv.store.get_many(["value", "lasting", "gone"]) == [b"two", b"v", None]
    assert await kv.store.members("set") == {"new"}
    assert await kv.store.fields("hash") == {"f": b"second", "g": b"g"}
    await kv.advance(kv.unit)  # every write's own TTL holds
    assert await kv.store.get_many(["value", "lasting"]) == [None, b"v"]
    assert await kv.store.members("set") == set()
    assert await kv.store.fields("hash") == {"g": b"g"}
    await kv.store.write_many([])


async def test_write_many_with_a_write_of_the_wrong_kind_is_refused(kv: Harness) -> None:
    await kv.store.set("plain", b"v")
    with pytest.raises(TypeError):
        await kv.store.write_many([PutField("plain", "f", b"x", kv.unit)])


async def test_a_key_refuses_operations_of_another_kind(kv: Harness) -> None:
    await kv.store.set("value", b"not a number")
    await kv.store.add_member("set", "m", kv.unit * 4)
    with pytest.raises(TypeError):
        await kv.store.add_member("value", "m", kv.unit)
    with pytest.raises(TypeError):
        await kv.store.increment("value", kv.unit)
    with pytest.raises(TypeError):
        await kv.store.get("set")
    with pytest.raises(TypeError):
        await kv.store.put_field("set", "f", b"v", kv.unit)


async def test_stores_in_different_namespaces_do_not_see_each_other(kv: Harness) -> None:
    other = await kv.other_store()
    await kv.store.set("k", b"mine")
    await kv.store.add_member("s", "mine", kv.unit * 4)
    assert await other.get("k") is None
    assert await other.members("s") == set()
    assert not await other.delete("k")
    await other.set("k", b"theirs")
    assert await kv.store.get("k") == b"mine"


async def test_ping_succeeds_when_the_store_is_reachable(kv: Harness) -> None:
    await kv.store.ping()


@pytest.mark.redis
async def test_delete_namespace_removes_every_key_of_its_namespace_only() -> None:
    require("redis")
    mine, theirs = await _redis_store(), await _redis_store()
    try:
        await mine.set("k", b"v")
        await mine.put_field("h", "f", b"v", 60)
        await theirs.set("k", b"v")
        assert await mine.delete_namespace() == 3  # the hash counts twice: values and field expiries
        assert await mine.get("k") is None
        assert await theirs.get("k") == b"v"
    finally:
        for store in (mine, theirs):
            await store.delete_namespace()
            await store.close()


@pytest.mark.redis
async def test_redis_keys_of_sets_and_hashes_expire_with_their_last_entry() -> None:
    require("redis")
    harness = await RedisHarness.open()
    store, raw = harness.redis, Redis.from_url(REDIS_URL)
    try:
        await store.add_member("s", "m", harness.unit)
        await store.put_field("h", "f", b"v", harness.unit)
        names = [f"{store.namespace}:{key}" for key in ("s", "h", "h:~expiries")]
        assert await raw.exists(*names) == 3
        await harness.advance(harness.unit)
        assert await raw.exists(*names) == 0  # gone by expiry alone, without a read to prune them
    finally:
        await raw.aclose()
        await harness.close()


async def test_redis_on_a_closed_port_is_unavailable_quickly() -> None:
    with socket.socket() as probe:  # a port nothing listens on once this socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = await RedisKeyValueStore.connect(f"redis://127.0.0.1:{port}/0", namespace=unique_namespace())
    try:
        # A refusal, not a hang: the timeout only guards against waiting forever.
        async with asyncio.timeout(10):
            with pytest.raises(Unavailable):
                await store.ping()
            with pytest.raises(Unavailable):
                await store.get("k")
    finally:
        await store.close()


async def test_the_in_memory_store_refuses_new_keys_when_full() -> None:
    clock = ManualClock()
    store = InMemoryKeyValueStore(clock, max_entries=2)
    await store.set("a", b"1", ttl=10)
    await store.set("b", b"2")
    with pytest.raises(Unavailable, match="full"):
        await store.set("c", b"3")
    await store.set("b", b"updated")  # an existing key is no new entry
    clock.advance(10)
    assert await store.set("c", b"3")  # the expired "a" made room


@pytest.mark.redis
async def test_a_burst_larger_than_the_redis_pool_waits_for_a_connection_instead_of_failing() -> None:
    require("redis")
    store = await RedisKeyValueStore.connect(REDIS_URL, namespace=unique_namespace(), max_connections=2)
    try:
        await store.set("k", b"v")
        answers = await asyncio.gather(*(store.get("k") for _ in range(200)))
        assert answers == [b"v"] * 200
    finally:
        await store.delete_namespace()
        await store.close()
