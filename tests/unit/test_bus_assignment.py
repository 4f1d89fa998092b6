"""Partition hashing and the capped rendezvous assignment of partitions to workers."""

from __future__ import annotations

import math
import zlib

import pytest

from parlour.common.bus.assignment import assign, partition_of, share


def test_a_partition_key_always_lands_on_the_same_partition() -> None:
    # Pinned: the hash is part of the contract between releases (a change would reorder chats mid-upgrade).
    for key in ("chat-1", "chat-2", "0f8fad5b-d9cb-469f-a165-70867728950e"):
        assert partition_of(key, 16) == zlib.crc32(key.encode()) % 16
    assert partition_of("chat-1", 16) == 4
    assert {partition_of(f"chat-{n}", 16) for n in range(1000)} == set(range(16))


@pytest.mark.parametrize("count", [1, 2, 3, 5, 16, 20])
def test_every_partition_has_exactly_one_owner_and_shares_are_fair(count: int) -> None:
    workers = [f"worker-{n}" for n in range(count)]
    owners = assign(workers, 16)
    assert set(owners) == set(range(16))
    loads = [sum(1 for owner in owners.values() if owner == worker) for worker in workers]
    assert max(loads) <= math.ceil(16 / count)
    shares = [share(worker, workers, 16) for worker in workers]
    assert frozenset().union(*shares) == frozenset(range(16))
    assert sum(len(each) for each in shares) == 16


def test_every_worker_computes_the_same_assignment_whatever_the_order() -> None:
    workers = ["c", "a", "b"]
    assert assign(workers, 16) == assign(sorted(workers), 16) == assign(reversed(workers), 16)


def test_a_worker_alone_owns_everything_even_before_it_sees_itself_registered() -> None:
    assert share("lonely", [], 16) == frozenset(range(16))


def test_a_dead_workers_share_moves_to_the_survivors_and_most_others_stay() -> None:
    workers = [f"worker-{n}" for n in range(4)]
    before = assign(workers, 16)
    after = assign(workers[:3], 16)
    assert set(after.values()) == set(workers[:3])
    moved_from_survivors = [p for p, owner in before.items() if owner != "worker-3" and after[p] != owner]
    assert len(moved_from_survivors) < 12 / 2


def test_no_workers_means_no_owners() -> None:
    assert assign([], 16) == {}
