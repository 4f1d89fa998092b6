"""Which partition a key lands on, and which worker owns which partition.

`partition_of` is a stable hash (CRC-32), the same in every process and every release: changing it
would move chats between partitions and break per-chat ordering during a rolling upgrade.

`share` is capped rendezvous hashing: each partition goes to the worker with the highest score for it
among those not yet holding their fair share (ceil(partitions / workers)). Every worker computes the
same answer from the same membership list, with no coordination, and the shares differ by little.
When a worker leaves, its partitions go to the survivors and most of theirs stay where they are.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Iterable


def partition_of(partition_key: str, partitions: int) -> int:
    """The partition (0 ≤ p < partitions) that owns `partition_key`."""
    return zlib.crc32(partition_key.encode()) % partitions


def _score(worker: str, partition: int) -> int:
    digest = hashlib.blake2b(f"{worker}/{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign(workers: Iterable[str], partitions: int) -> dict[int, str]:
    """The owner of every partition, given the live workers (empty when there are none)."""
    live = sorted(set(workers))
    if not live:
        return {}
    cap = math.ceil(partitions / len(live))
    load = dict.fromkeys(live, 0)
    owners: dict[int, str] = {}
    for partition in range(partitions):
        ranked = sorted(live, key=lambda worker: (_score(worker, partition), worker), reverse=True)
        owner = next(worker for worker in ranked if load[worker] < cap)
        owners[partition] = owner
        load[owner] += 1
    return owners


def share(worker: str, workers: Iterable[str], partitions: int) -> frozenset[int]:
    """The partitions `worker` owns; it always counts itself among the live workers."""
    owners = assign({*workers, worker}, partitions)
    return frozenset(partition for partition, owner in owners.items() if owner == worker)
