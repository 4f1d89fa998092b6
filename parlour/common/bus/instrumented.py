"""The bus as every service sees it: any `MessageBus` with its rates counted and, when on, traced.

Where spans meet bus messages, for both buses (AMQP headers and the in-memory bus alike, through the
port's `with_trace_context` and `trace_context_of`): a publish is a PRODUCER span whose context goes in
the message's `traceparent` header, and a consumed batch is a CONSUMER span. A batch's span is the child
of its first message's context and links every message's context (OpenTelemetry's answer for batches:
links, since one span cannot have many parents), so the trace of a message that travelled alone is one
tree from the sender to the last consumer, and a message that shared a batch still points at it. While
tracing is off (`tracing.enabled` is False) a publish or a batch costs one counter increment and this
check, nothing else.

Counters count per call (a batch handed to a handler, a publish), with their children resolved once per
message type, so the hot path pays no label look-up per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from prometheus_client import Counter

from parlour.common import tracing
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
    trace_context_of,
    with_trace_context,
)
from parlour.common.metrics import Metrics

log = structlog.get_logger(__name__)


class _Counted:
    """A counter's child per message type, resolved once each."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[str, Any] = {}

    def add(self, kind: str, count: int = 1) -> None:
        child = self._children.get(kind)
        if child is None:
            child = self._children[kind] = self._counter.labels(kind)
        child.inc(count)


class InstrumentedMessageBus(MessageBus):
    """`inner` with publish and consume rates on `metrics`, and spans while tracing is on."""

    def __init__(self, inner: MessageBus, metrics: Metrics) -> None:
        self.inner = inner
        self._published = _Counted(metrics.bus_published)
        self._consumed = _Counted(metrics.bus_consumed)

    @property
    def partitions(self) -> int:
        return self.inner.partitions

    async def send_command(self, partition_key: str, message: BusMessage) -> None:
        self._published.add(message.type)
        if not tracing.enabled:
            await self.inner.send_command(partition_key, message)
            return
        with tracing.tracer().start_as_current_span(f"publish {message.type}", kind=tracing.SpanKind.PRODUCER):
            await self.inner.send_command(partition_key, with_trace_context(message))

    async def publish(self, routing_keys: Sequence[str], message: BusMessage) -> None:
        self._published.add(message.type)
        if not tracing.enabled:
            await self.inner.publish(routing_keys, message)
            return
        with tracing.tracer().start_as_current_span(
            f"publish {message.type}", kind=tracing.SpanKind.PRODUCER, attributes={"parlour.keys": len(routing_keys)}
        ):
            await self.inner.publish(routing_keys, with_trace_context(message))

    async def consume_commands(self, handler: BatchHandler, *, max_batch: int = 1) -> Subscription:
        return await self.inner.consume_commands(self._batch(handler), max_batch=max_batch)

    async def open_route(self, handler: Handler, *, on_gap: GapHandler | None = None) -> DeliveryRoute:
        return await self.inner.open_route(self._one(handler), on_gap=on_gap)

    async def subscribe(
        self,
        name: str,
        routing_keys: Sequence[str],
        handler: BatchHandler,
        *,
        max_batch: int = 1,
        linger: float = 0.0,
    ) -> Subscription:
        return await self.inner.subscribe(name, routing_keys, self._batch(handler), max_batch=max_batch, linger=linger)

    def _batch(self, handler: BatchHandler) -> BatchHandler:
        async def handle(messages: Sequence[BusMessage]) -> None:
            kind = messages[0].type if messages else ""
            self._consumed.add(kind, len(messages))
            if not tracing.enabled:
                await handler(messages)
                return
            parent, links = tracing.parent_and_links([trace_context_of(m) for m in messages])
            with tracing.tracer().start_as_current_span(
                f"consume {kind}", context=parent, kind=tracing.SpanKind.CONSUMER, links=links,
                attributes={"messaging.batch.message_count": len(messages)},
            ):  # fmt: skip
                await handler(messages)

        return handle

    def _one(self, handler: Handler) -> Handler:
        async def handle(message: BusMessage) -> None:
            self._consumed.add(message.type)
            if not tracing.enabled:
                await handler(message)
                return
            with tracing.tracer().start_as_current_span(
                f"consume {message.type}", context=trace_context_of(message), kind=tracing.SpanKind.CONSUMER
            ):
                await handler(message)

        return handle

    async def parked(self, limit: int = 100) -> list[ParkedMessage]:
        return await self.inner.parked(limit)

    async def replay(self, message_ids: Sequence[str] | None = None) -> int:
        return await self.inner.replay(message_ids)

    async def queue_depths(self) -> list[QueueDepth]:
        return await self.inner.queue_depths()

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


async def sample_queues(bus: MessageBus, metrics: Metrics, interval: float) -> None:
    """Every `interval` seconds, the bus's queue depths into the gauges; supervised: a failed sample (the
    broker away) is logged and the next one tries again. Cancel it to stop."""
    while True:
        try:
            for depth in await bus.queue_depths():
                if depth.parked:
                    metrics.parked_messages.labels(depth.queue).set(depth.messages)
                else:
                    metrics.queue_messages.labels(depth.queue).set(depth.messages)
                    metrics.queue_consumers.labels(depth.queue).set(depth.consumers)
        except Exception as error:
            log.warning("bus.sample_failed", error=f"{type(error).__name__}: {error}")
        await asyncio.sleep(interval)
