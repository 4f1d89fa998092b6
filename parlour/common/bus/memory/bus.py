"""The in-memory message bus: the production bus of embedded mode (`parlour run`, one process, no broker).

Not a test fake: it keeps every promise of the port (parlour/common/bus/port.py) that one process can
keep, and passes the same contract suite as the RabbitMQ bus.

* Commands: N partitions, each a bounded mailbox drained by one task, which hands up to `max_batch`
  consecutive messages to the partition's owner among the command workers (capped rendezvous hashing,
  as in distributed mode). A worker that closes mid-batch gives the batch back to the head of the
  mailbox, so the next owner sees it first, in order.
* Events: a delivery route or a named subscription is a bounded mailbox with one task per consumer;
  publishing puts one envelope in each mailbox whose bindings match any of the event's keys.
* Failures: a retry is a timer that puts the message back on its mailbox after the backoff (real time,
  so the mailbox keeps flowing meanwhile); then the message is parked here, in memory.

Every mailbox is bounded by `queue_limit`: a sender waits for room up to `publish_timeout` seconds and
then gets `Unavailable`, so memory never grows without bound. Nothing outlives the process, as embedded
mode promises; the parking lot is bounded too (the oldest entry goes, with an ERROR line).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

import structlog

from parlour.common.bus import assignment
from parlour.common.bus.background import TaskSet
from parlour.common.bus.memory.parts import Envelope, Mailbox, RouteTable
from parlour.common.bus.policy import DEFAULT_RETRY, RetryPolicy, error_summary
from parlour.common.bus.port import (
    BatchHandler,
    BusMessage,
    DeliveryRoute,
    GapHandler,
    Handler,
    MessageBus,
    ParkedMessage,
    QueueDepth,
    Subscription,
    as_batch_handler,
)
from parlour.common.clock import Clock
from parlour.common.errors import Unavailable

log = structlog.get_logger(__name__)


class _Consumer(Subscription):
    """One consumer of the bus: its handler, and the deliveries it has in flight."""

    def __init__(self, bus: InMemoryMessageBus, handler: BatchHandler, max_batch: int, linger: float = 0.0) -> None:
        self.id = uuid.uuid4().hex
        self.bus = bus
        self.handler = handler
        self.max_batch = max_batch
        self.linger = linger
        self.closed = False
        self.inflight: set[asyncio.Task[Any]] = set()
        self.settled = asyncio.Event()
        self.loop: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.bus._forget(self)
        # In-flight messages are not acknowledged: cancelling gives them back to their mailbox's head.
        # A partition task survives that (it serves the other workers): wait until it has let go.
        for task in self.inflight:
            task.cancel()
        while self.inflight:
            self.settled.clear()
            await self.settled.wait()
        if self.loop is not None:
            self.loop.cancel()
            await asyncio.wait({self.loop})


class _Route(_Consumer, DeliveryRoute):
    """A delivery route: a private mailbox fed by the routing keys bound to it."""

    def __init__(self, bus: InMemoryMessageBus, handler: Handler) -> None:
        super().__init__(bus, as_batch_handler(handler), 1)
        self.mailbox = Mailbox(f"route.{self.id}", bus._queue_limit)

    async def bind(self, routing_key: str) -> None:
        self.bus._routes.bind(routing_key, self.mailbox)

    async def unbind(self, routing_key: str) -> None:
        self.bus._routes.unbind(routing_key, self.mailbox)


class InMemoryMessageBus(MessageBus):
    """The bus of embedded mode, in this process's memory. See the module docstring for the model."""

    def __init__(
        self,
        clock: Clock,
        *,
        partitions: int = 16,
        policy: RetryPolicy = DEFAULT_RETRY,
        queue_limit: int = 10_000,
        publish_timeout: float = 5.0,
    ) -> None:
        self._clock = clock
        self._policy = policy
        self._queue_limit = queue_limit
        self._publish_timeout = publish_timeout
        self._partitions = [Mailbox(f"cmd.{index}", queue_limit) for index in range(partitions)]
        self._workers: dict[str, _Consumer] = {}
        self._subscribers: dict[str, set[_Consumer]] = {}  # consumers of each subscription's mailbox
        self._owners: dict[int, str] = {}  # the assignment of partitions, recomputed when workers change
        self._workers_changed = asyncio.Event()
        self._routes = RouteTable()
        self._mailboxes = {mailbox.name: mailbox for mailbox in self._partitions}
        self._parked: deque[ParkedMessage] = deque()
        self._tasks = TaskSet()
        self._draining = False
        self._closed = False

    # -- commands ---------------------------------------------------------------------------------

    @property
    def partitions(self) -> int:
        return len(self._partitions)

    async def send_command(self, partition_key: str, message: BusMessage) -> None:
        self._check_open()
        index = self.partition_of(partition_key)
        await self._partitions[index].put(Envelope(message), self._publish_timeout)

    async def consume_commands(self, handler: BatchHandler, *, max_batch: int = 1) -> Subscription:
        self._check_open()
        worker = _Consumer(self, handler, max(1, max_batch))
        self._workers[worker.id] = worker
        self._workers_changed_now()
        if not self._draining:
            self._draining = True
            for mailbox in self._partitions:
                self._tasks.spawn(self._drain_partition(mailbox), name=f"bus.{mailbox.name}")
        return worker

    async def _drain_partition(self, mailbox: Mailbox) -> None:
        index = self._partitions.index(mailbox)
        this = asyncio.current_task()
        assert this is not None
        while True:
            first = await mailbox.get()
            worker = await self._owner(index)
            pending = [first, *mailbox.take_ready(worker.max_batch - 1)]
            worker.inflight.add(this)  # closing the worker cancels this task while it runs the handler
            try:
                await self._deliver(worker.handler, pending, mailbox)
            except asyncio.CancelledError:
                mailbox.requeue(pending)  # not acknowledged: the next owner gets them first, in order
                if self._closed or not worker.closed:
                    raise
                this.uncancel()  # only the delivery was cancelled, because its worker left
            except Exception:  # a bug of ours: log it, keep the partition flowing
                log.exception("bus.consumer_error", origin=mailbox.name)
            finally:
                worker.inflight.discard(this)
                worker.settled.set()

    async def _owner(self, partition: int) -> _Consumer:
        while not self._workers:
            self._workers_changed.clear()
            await self._workers_changed.wait()
        if not self._owners:
            self._owners = assignment.assign(self._workers, len(self._partitions))
        return self._workers[self._owners[partition]]

    def _workers_changed_now(self) -> None:
        self._owners = {}
        self._workers_changed.set()

    # -- events -----------------------------------------------------------------------------------

    async def publish(self, routing_keys: Sequence[str], message: BusMessage) -> None:
        self._check_open()
        for mailbox in self._routes.targets(routing_keys):
            await mailbox.put(Envelope(message), self._publish_timeout)

    async def open_route(self, handler: Handler, *, on_gap: GapHandler | None = None) -> DeliveryRoute:
        # In one process nothing is lost between publisher and route, so `on_gap` is never due.
        self._check_open()
        route = _Route(self, handler)
        self._mailboxes[route.mailbox.name] = route.mailbox
        route.loop = self._tasks.spawn(self._drain_queue(route, route.mailbox), name=f"bus.{route.mailbox.name}")
        return route

    async def subscribe(
        self,
        name: str,
        routing_keys: Sequence[str],
        handler: BatchHandler,
        *,
        max_batch: int = 1,
        linger: float = 0.0,
    ) -> Subscription:
        self._check_open()
        # Like a durable queue: the mailbox and its bindings outlive the subscriptions that consume it.
        mailbox = self._mailboxes.setdefault(f"svc.{name}", Mailbox(f"svc.{name}", self._queue_limit))
        for key in routing_keys:
            self._routes.bind(key, mailbox)
        consumer = _Consumer(self, handler, max(1, max_batch), linger)
        self._subscribers.setdefault(mailbox.name, set()).add(consumer)
        consumer.loop = self._tasks.spawn(self._drain_queue(consumer, mailbox), name=f"bus.{mailbox.name}")
        return consumer

    async def _drain_queue(self, consumer: _Consumer, mailbox: Mailbox) -> None:
        # One task per consumer: closing the consumer cancels it, giving its message in flight back.
        while True:
            pending = [await mailbox.get()]
            try:
                if consumer.linger and len(mailbox) < consumer.max_batch - 1:
                    await asyncio.sleep(consumer.linger)
                pending.extend(mailbox.take_ready(consumer.max_batch - 1))
                await self._deliver(consumer.handler, pending, mailbox)
            except asyncio.CancelledError:
                mailbox.requeue(pending)
                raise
            except Exception:  # a bug of ours: log it, keep the queue flowing
                log.exception("bus.consumer_error", origin=mailbox.name)

    # -- delivery and failures --------------------------------------------------------------------

    async def _deliver(self, handler: BatchHandler, pending: list[Envelope], mailbox: Mailbox) -> None:
        """Hand `pending` to `handler`, removing each envelope from `pending` once it is settled."""
        try:
            await handler([envelope.message for envelope in pending])
        except Exception as error:
            if len(pending) == 1:
                self._failed(pending.pop(), error, mailbox)
                return
            log.warning("bus.batch_failed", origin=mailbox.name, size=len(pending), error=error_summary(error))
            while pending:
                await self._deliver_one(handler, pending[0], mailbox)
                pending.pop(0)
            return
        pending.clear()

    async def _deliver_one(self, handler: BatchHandler, envelope: Envelope, mailbox: Mailbox) -> None:
        try:
            await handler([envelope.message])
        except Exception as error:
            self._failed(envelope, error, mailbox)

    def _failed(self, envelope: Envelope, error: Exception, mailbox: Mailbox) -> None:
        attempts = envelope.attempts + 1
        fields = {"origin": mailbox.name, "message_id": envelope.message.message_id, "attempts": attempts}
        if self._policy.gives_up(error, attempts):
            log.warning("bus.parked", **fields, error=error_summary(error))
            self._park(ParkedMessage(envelope.message, mailbox.name, error_summary(error), attempts, self._clock.now()))
            return
        delay = self._policy.delay(attempts)
        log.warning("bus.retry", **fields, delay=delay, error=error_summary(error))
        retry = Envelope(envelope.message, attempts)
        self._tasks.spawn(self._retry_later(retry, mailbox, delay), name="bus.retry")

    async def _retry_later(self, envelope: Envelope, mailbox: Mailbox, delay: float) -> None:
        await asyncio.sleep(delay)
        if not mailbox.closed:  # a route closed meanwhile: its process's events go with it
            await mailbox.put(envelope, None)

    def _park(self, parked: ParkedMessage) -> None:
        if len(self._parked) >= self._queue_limit:
            dropped = self._parked.popleft()
            log.error("bus.parking_full", dropped=dropped.message.message_id, limit=self._queue_limit)
        self._parked.append(parked)

    # -- parking lot ------------------------------------------------------------------------------

    async def parked(self, limit: int = 100) -> list[ParkedMessage]:
        return list(self._parked)[:limit]

    async def replay(self, message_ids: Sequence[str] | None = None) -> int:
        wanted = None if message_ids is None else set(message_ids)
        replayed = 0
        for entry in list(self._parked):
            if wanted is not None and entry.message.message_id not in wanted:
                continue
            mailbox = self._mailbox_named(entry.origin)
            if mailbox is None:
                log.warning("bus.replay_no_origin", origin=entry.origin, message_id=entry.message.message_id)
                continue
            self._parked.remove(entry)
            await mailbox.put(Envelope(entry.message), self._publish_timeout)
            replayed += 1
        return replayed

    def _mailbox_named(self, name: str) -> Mailbox | None:
        mailbox = self._mailboxes.get(name)
        return None if mailbox is None or mailbox.closed else mailbox

    async def queue_depths(self) -> list[QueueDepth]:
        workers = len(self._workers)
        depths = [QueueDepth(f"cmd.{index}", len(box), workers) for index, box in enumerate(self._partitions)]
        subscribed = (box for name, box in self._mailboxes.items() if name.startswith("svc."))
        depths += [QueueDepth(box.name, len(box), len(self._subscribers.get(box.name, ()))) for box in subscribed]
        depths.append(QueueDepth("parked", len(self._parked), 0, parked=True))
        return depths

    # -- lifecycle --------------------------------------------------------------------------------

    async def ping(self) -> None:
        self._check_open()

    async def close(self) -> None:
        self._closed = True
        for consumer in list(self._workers.values()):
            await consumer.close()
        await self._tasks.cancel_all()

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("The message bus is closed: the process is shutting down.")

    def _forget(self, consumer: _Consumer) -> None:
        for subscribers in self._subscribers.values():
            subscribers.discard(consumer)
        if self._workers.pop(consumer.id, None) is not None:
            self._workers_changed_now()
        if isinstance(consumer, _Route):
            consumer.mailbox.close()
            self._routes.drop(consumer.mailbox)
            self._mailboxes.pop(consumer.mailbox.name, None)
