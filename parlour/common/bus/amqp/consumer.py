"""Consuming one RabbitMQ queue: batches in order, ack after the handler, retry and park on failure.

Each consumer has a channel of its own. Closing that channel is how a consumer lets go: the broker puts
every unacknowledged message back in its place, in order, and then (single active consumer) hands the
queue to the next consumer, so a partition moves between workers without reordering.

A failed message is never slept on here: it is republished to the retry exchange with its attempt count,
the retry queue of its delay holds it for that long and dead-letters it back to its origin queue; after
the last attempt it is republished to the parking queue with its error. The original is acked only once
that publish is confirmed, so a crash in between redelivers it rather than losing it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import aiormq.abc
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from parlour.common.bus.amqp import codec
from parlour.common.bus.amqp.topology import RETRY_DELAY_HEADER, Topology
from parlour.common.bus.background import TaskSet
from parlour.common.bus.policy import RetryPolicy, error_summary
from parlour.common.bus.port import BatchHandler, BusMessage
from parlour.common.clock import Clock
from parlour.common.errors import ParlourError

log = structlog.get_logger(__name__)

# How many message ids of split events a route remembers to drop their extra copies (see bus.py).
_RECENT_FANOUT_IDS = 4096
# A revoked partition waits this long for its batch in flight before cancelling it.
_REVOKE_GRACE = 30.0


class Link(Protocol):
    """What a consumer needs from the bus that owns it."""

    topology: Topology
    policy: RetryPolicy
    clock: Clock
    prefetch: int

    @property
    def connected(self) -> bool: ...

    async def open_channel(self) -> AbstractChannel: ...

    async def control(self) -> aiormq.abc.AbstractChannel: ...

    async def publish_raw(
        self, exchange: str, routing_key: str, message: codec.Outgoing, *, mandatory: bool
    ) -> None: ...

    def channel_failed(self, error: BaseException | None) -> None: ...


class QueueConsumer:
    """Consumes the queue `queue` with `handler`, surviving reconnects through `attach`/`detach`."""

    def __init__(
        self,
        link: Link,
        queue: str,
        handler: BatchHandler,
        *,
        max_batch: int = 1,
        linger: float = 0.0,
        dedupe_fanout: bool = False,
    ) -> None:
        self.queue = queue
        self._link = link
        self._handler = handler
        self._max_batch = max(1, max_batch)
        self._linger = linger
        self._recent: OrderedDict[str, None] | None = OrderedDict() if dedupe_fanout else None
        self._channel: AbstractChannel | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy = False
        # Retries and parkings in flight: the loop does not wait for their confirms (at most `prefetch`).
        self._settling = TaskSet()

    @property
    def attached(self) -> bool:
        return self._channel is not None

    async def attach(self) -> None:
        """Start consuming on a new channel of the current connection."""
        if self._task is not None:  # the previous connection's loop: let it end before a new one starts
            self._task.cancel()
            await asyncio.wait({self._task})
        buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()  # bounded by the prefetch

        async def on_message(message: AbstractIncomingMessage) -> None:
            buffer.put_nowait(message)

        channel = await self._link.open_channel()
        try:
            await channel.set_qos(prefetch_count=self._link.prefetch)
            queue = await channel.get_queue(self.queue, ensure=False)
            await queue.consume(on_message)
        except BaseException:
            await _close_quietly(channel)
            raise
        channel.close_callbacks.add(self._on_channel_closed)
        self._channel = channel
        self._stopping = False
        self._task = asyncio.create_task(self._loop(buffer), name=f"bus.consume.{self.queue}")

    def detach(self) -> None:
        """The connection is gone: stop processing (unacked messages come back through the broker)."""
        self._channel = None
        self._settling.cancel()
        if self._task is not None:
            self._task.cancel()

    async def stop(self, *, graceful: bool) -> None:
        """Stop consuming; `graceful` lets the batch in flight finish and be acked first."""
        self._stopping = True
        task = self._task
        if task is not None:
            if not graceful or not self._busy:
                task.cancel()
            done, _ = await asyncio.wait({task}, timeout=_REVOKE_GRACE)
            if not done:
                log.warning("bus.revoke_cancelled", queue=self.queue, grace=_REVOKE_GRACE)
                task.cancel()
                await asyncio.wait({task})
        if not graceful or not await self._settling.wait(_REVOKE_GRACE):
            await self._settling.cancel_all()
        channel, self._channel = self._channel, None
        if channel is not None:
            await _close_quietly(channel)

    def _on_channel_closed(self, sender: Any, error: BaseException | None) -> None:
        if sender is self._channel:  # not one we closed or gave up on ourselves
            self._channel = None
            self._link.channel_failed(error)

    async def _loop(self, buffer: asyncio.Queue[AbstractIncomingMessage]) -> None:
        while not self._stopping:
            batch = [await buffer.get()]
            if self._linger and buffer.qsize() < self._max_batch - 1:
                await asyncio.sleep(self._linger)
            while len(batch) < self._max_batch and not buffer.empty():
                batch.append(buffer.get_nowait())
            self._busy = True
            try:
                await self._handle(batch)
            except Exception:  # a bug of ours: log it, give the batch back, keep consuming
                log.exception("bus.consumer_error", queue=self.queue)
                await self._requeue([message for message in batch if not message.processed])
            finally:
                self._busy = False

    # -- one batch --------------------------------------------------------------------------------

    async def _handle(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        ready: list[tuple[AbstractIncomingMessage, BusMessage]] = []
        for incoming in batch:
            message = codec.decode(incoming)
            if message is None:
                error = "malformed: the AMQP message has no message id or type property"
                self._park(incoming, codec.salvage(incoming), error, codec.attempts_of(incoming))
            elif self._seen_before(incoming, message):
                await _ack(incoming)
            else:
                ready.append((incoming, message))
        if not ready:
            return
        try:
            await self._handler([message for _, message in ready])
        except Exception as error:
            await self._batch_failed(ready, error)
            return
        for incoming, message in ready:
            self._remember(incoming, message)
        if len(ready) > 1 and not self._settling:
            # One frame for the whole batch: every earlier delivery of this channel (its only consumer's)
            # is settled already, and no retry or parking copy is waiting for its confirm.
            await _ack(ready[-1][0], multiple=True)
        else:
            for incoming, _ in ready:
                await _ack(incoming)

    async def _batch_failed(self, ready: list[tuple[AbstractIncomingMessage, BusMessage]], error: Exception) -> None:
        if len(ready) == 1:
            self._failed(*ready[0], error)
            return
        log.warning("bus.batch_failed", queue=self.queue, size=len(ready), error=error_summary(error))
        for incoming, message in ready:
            try:
                await self._handler([message])
            except Exception as single_error:
                self._failed(incoming, message, single_error)
            else:
                self._remember(incoming, message)
                await _ack(incoming)

    def _remember(self, incoming: AbstractIncomingMessage, message: BusMessage) -> None:
        if self._recent is not None and codec.is_fanout(incoming):
            self._recent[message.message_id] = None
            if len(self._recent) > _RECENT_FANOUT_IDS:
                self._recent.popitem(last=False)

    def _seen_before(self, incoming: AbstractIncomingMessage, message: BusMessage) -> bool:
        return self._recent is not None and codec.is_fanout(incoming) and message.message_id in self._recent

    # -- failures ---------------------------------------------------------------------------------

    def _failed(self, incoming: AbstractIncomingMessage, message: BusMessage, error: Exception) -> None:
        attempts = codec.attempts_of(incoming) + 1
        if self._link.policy.gives_up(error, attempts):
            self._park(incoming, message, error_summary(error), attempts)
        else:
            self._retry(incoming, message, error, attempts)

    def _retry(self, incoming: AbstractIncomingMessage, message: BusMessage, error: Exception, attempts: int) -> None:
        delay_ms = self._link.policy.delay_ms(attempts)
        headers: dict[str, Any] = {codec.ATTEMPTS: attempts, RETRY_DELAY_HEADER: str(delay_ms)}
        if codec.is_fanout(incoming):
            headers[codec.FANOUT] = "1"
        retry = codec.encode(message, headers, expiration_ms=delay_ms)
        log.warning(
            "bus.retry", queue=self.queue, message_id=message.message_id, attempts=attempts,
            delay_ms=delay_ms, error=error_summary(error),
        )  # fmt: skip
        self._settle_later(incoming, self._link.topology.retry, self.queue, retry)

    def _park(self, incoming: AbstractIncomingMessage, message: BusMessage, error: str, attempts: int) -> None:
        headers = codec.park_headers(self.queue, error, attempts, self._link.clock.now())
        log.warning("bus.parked", queue=self.queue, message_id=message.message_id, attempts=attempts, error=error)
        self._settle_later(incoming, "", self._link.topology.parked, codec.encode(message, headers))

    def _settle_later(
        self, incoming: AbstractIncomingMessage, exchange: str, routing_key: str, message: codec.Outgoing
    ) -> None:
        # The next message need not wait for this confirm: a flood of failures flows at publish speed.
        self._settling.spawn(self._settle(incoming, exchange, routing_key, message), name=f"bus.settle.{self.queue}")

    async def _settle(
        self, incoming: AbstractIncomingMessage, exchange: str, routing_key: str, message: codec.Outgoing
    ) -> None:
        # Ack only once the retry or parked copy is confirmed; if that fails, the original goes back.
        try:
            await self._link.publish_raw(exchange, routing_key, message, mandatory=True)
        except ParlourError as error:
            log.warning(
                "bus.settle_failed", queue=self.queue, message_id=incoming.message_id, error=error_summary(error)
            )
            await asyncio.sleep(self._link.policy.base_delay)  # no hot loop while the broker is unwell
            await self._requeue([incoming])
            return
        await _ack(incoming)

    async def _requeue(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        for message in messages:
            try:
                await message.nack(requeue=True)
            except CONNECTION_EXCEPTIONS as error:  # the channel is gone: the broker requeues it anyway
                log.debug("bus.nack_failed", queue=self.queue, error=error_summary(error))


async def _ack(incoming: AbstractIncomingMessage, *, multiple: bool = False) -> None:
    try:
        await incoming.ack(multiple=multiple)
    except CONNECTION_EXCEPTIONS as error:  # the channel is gone: the message will be redelivered
        log.debug("bus.ack_failed", message_id=incoming.message_id, error=error_summary(error))


async def _close_quietly(channel: AbstractChannel) -> None:
    if channel.is_closed:
        return
    try:
        await channel.close()
    except CONNECTION_EXCEPTIONS as error:
        log.debug("bus.channel_close_failed", error=error_summary(error))
