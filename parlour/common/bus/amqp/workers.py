"""Sharing the command partitions among worker processes (docs/architecture.md, "Known traps").

Single active consumer alone does not balance: the first worker to subscribe would be active on every
partition queue. So each worker consumes only its share:

1. it registers in the key-value store, in the set `bus.<ns>.workers`, with a TTL it refreshes every
   `interval` seconds (a heartbeat; a worker that dies simply stops refreshing);
2. at each heartbeat it reads the live members and computes its share by capped rendezvous hashing
   (parlour/common/bus/assignment.py): every worker reaches the same answer without talking;
3. it consumes the partitions it gained and lets go of those it lost: a lost partition finishes its
   batch in flight, acks it, and closes its channel, so the broker requeues the prefetched rest in order
   and activates the new owner, who was waiting behind it (single active consumer, per queue).

A worker that dies is gone from the set within `ttl` seconds and its share moves at the survivors' next
heartbeat. While the assignment is in flux two workers may both subscribe to a partition: single active
consumer still lets only one of them receive, which is what keeps a chat's order.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import structlog

from parlour.common.bus import assignment
from parlour.common.bus.amqp.consumer import Link, QueueConsumer
from parlour.common.bus.amqp.routes import Forget
from parlour.common.bus.background import TaskSet
from parlour.common.bus.policy import error_summary
from parlour.common.bus.port import BatchHandler, Subscription
from parlour.common.kv.port import KeyValueStore

log = structlog.get_logger(__name__)


class CommandWorker(Subscription):
    """This process's membership among the command workers, and the partition consumers of its share."""

    def __init__(
        self,
        link: Link,
        kv: KeyValueStore,
        handler: BatchHandler,
        *,
        max_batch: int,
        interval: float,
        ttl: float,
        forget: Forget,
    ) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._link = link
        self._kv = kv
        self._handler = handler
        self._max_batch = max_batch
        self._interval = interval
        self._ttl = ttl
        self._forget = forget
        self._members_key = f"bus.{link.topology.namespace}.workers"
        self._consumers: dict[int, QueueConsumer] = {}
        self._releasing: set[QueueConsumer] = set()
        self._lock = asyncio.Lock()
        self._tasks = TaskSet()
        self._attached = False
        self._closed = False

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions this worker currently consumes."""
        return frozenset(self._consumers)

    async def start(self) -> None:
        """Join the workers, take a first share, and keep it up to date in the background."""
        await self._rebalance()
        self._tasks.spawn(self._heartbeat(), name=f"bus.worker.{self.id}")

    async def attach(self) -> None:
        """Consume this worker's share on the current connection."""
        async with self._lock:
            self._attached = True
            for consumer in self._consumers.values():
                await consumer.attach()

    def detach(self) -> None:
        self._attached = False
        for consumer in [*self._consumers.values(), *self._releasing]:
            consumer.detach()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._forget(self)
        consumers = [*self._consumers.values(), *self._releasing]  # before cancelling empties the latter
        await self._tasks.cancel_all()
        for consumer in consumers:
            await consumer.stop(graceful=False)
        self._consumers.clear()
        try:
            await self._kv.remove_member(self._members_key, self.id)
        except Exception as error:  # the key-value store is down: the entry expires on its own
            log.warning("bus.worker_leave_failed", worker=self.id, error=error_summary(error))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._rebalance()
            except Exception as error:  # keep the current share: single active consumer keeps it safe
                log.warning("bus.rebalance_failed", worker=self.id, error=error_summary(error))

    async def _rebalance(self) -> None:
        # A worker cut off from the broker stops renewing, so its share moves to workers that can serve it.
        if self._link.connected:
            await self._kv.add_member(self._members_key, self.id, self._ttl)
        members = await self._kv.members(self._members_key)
        wanted = assignment.share(self.id, members, self._link.topology.partitions)
        async with self._lock:
            if wanted != self.partitions:
                workers = len(members | {self.id})
                log.info("bus.partitions_assigned", worker=self.id, workers=workers, share=sorted(wanted))
            for partition in self.partitions - wanted:
                self._release(partition)
            for partition in wanted - self.partitions:
                queue = self._link.topology.partition_queue(partition)
                self._consumers[partition] = QueueConsumer(self._link, queue, self._handler, max_batch=self._max_batch)
            for consumer in self._consumers.values():
                if self._attached and not consumer.attached:
                    await consumer.attach()

    def _release(self, partition: int) -> None:
        consumer = self._consumers.pop(partition)
        self._releasing.add(consumer)

        async def release() -> None:
            try:
                await consumer.stop(graceful=True)
            finally:
                self._releasing.discard(consumer)

        self._tasks.spawn(release(), name=f"bus.release.{consumer.queue}")
