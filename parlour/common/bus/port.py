"""The message bus port: how services talk (docs/architecture.md, "Message flow").

Three ways a message travels, each with the same failure rules:

* **Commands** go to one of N durable partition queues chosen by a partition key (the chat id). Exactly
  one worker at a time consumes a partition, in publish order; worker processes share the partitions and
  take over those of a worker that goes away.
* **Events** are published once with every routing key they are for (`user.<id>`, service keys). A
  gateway opens a private **delivery route** and binds the keys of the users it holds; it gets one copy
  of an event however many of its users it names. Services **subscribe** a durable, named queue to keys.
* **Failures**: a handler that raises is retried a bounded number of times with exponential backoff, then
  the message is **parked** with its error and attempt count; a body that cannot be decoded is parked at
  once. The consumer keeps running in every case. Acknowledgement happens only after the handler returns.

Every implementation passes the one contract suite in tests/contract/test_message_bus.py.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry.context import Context

from parlour.common import tracing
from parlour.common.bus.assignment import partition_of
from parlour.common.errors import InvalidInput, Unavailable


def new_message_id() -> str:
    """A fresh, unique message id."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One message on the bus. `body` is msgspec-encoded by the sender; `headers` carry trace context."""

    type: str
    body: bytes
    message_id: str = field(default_factory=new_message_id)
    headers: Mapping[str, str] = field(default_factory=dict)


def with_trace_context(message: BusMessage) -> BusMessage:
    """`message` with the current trace context in its W3C `traceparent`/`tracestate` headers: the one way
    every bus carries a trace (AMQP as message headers, the in-memory bus as they are). Called while
    tracing is on only (parlour/common/bus/instrumented.py)."""
    return BusMessage(message.type, message.body, message.message_id, tracing.inject(dict(message.headers)))


def trace_context_of(message: BusMessage) -> Context | None:
    """The trace context `message` carries in its headers, or None."""
    return tracing.extract(message.headers)


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    """A message that exhausted its retries or could not be decoded, kept for inspection and replay."""

    message: BusMessage
    origin: str  # the queue or partition it came from, where replay sends it back
    error: str
    attempts: int
    parked_at: float


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """A queue's backlog as the bus sees it when sampled: messages waiting, and consumers attached."""

    queue: str
    messages: int
    consumers: int
    parked: bool = False  # the parking lot (dead letters): its depth is what an operator must hear of


Handler = Callable[[BusMessage], Awaitable[None]]
BatchHandler = Callable[[Sequence[BusMessage]], Awaitable[None]]
GapHandler = Callable[[], Awaitable[None]]


def as_batch_handler(handler: Handler) -> BatchHandler:
    """Adapt a one-message handler to the batch interface (its batches hold one message)."""

    async def handle(messages: Sequence[BusMessage]) -> None:
        for message in messages:
            await handler(message)

    return handle


class UnroutableError(Unavailable):
    """A message that must reach a queue reached none (for example, no partition queue exists)."""

    code = "unroutable"
    default_message = "The message bus could not route the message: is the topology declared?"


class MalformedMessage(InvalidInput):
    """Raised by a handler whose message can never be processed (for example its body does not decode).

    The bus parks such a message at once instead of retrying it; `msgspec.DecodeError` (and so
    `msgspec.ValidationError`) raised by a handler is treated the same way.
    """

    code = "malformed_message"
    default_message = "The bus message could not be decoded: it was parked for inspection."


class Subscription(ABC):
    """A running consumer. Closing it stops delivery; in-flight messages are not acknowledged."""

    @abstractmethod
    async def close(self) -> None:
        """Stop consuming."""


class DeliveryRoute(Subscription):
    """A gateway's private queue: events for any bound routing key arrive once each."""

    @abstractmethod
    async def bind(self, routing_key: str) -> None:
        """Start receiving events published with `routing_key` (idempotent)."""

    @abstractmethod
    async def unbind(self, routing_key: str) -> None:
        """Stop receiving events published with `routing_key` (idempotent)."""


class MessageBus(ABC):
    """Commands to partitioned work queues, events to routing keys, retries and parking."""

    @property
    @abstractmethod
    def partitions(self) -> int:
        """How many command partitions there are."""

    def partition_of(self, partition_key: str) -> int:
        """The partition whose queue takes commands for `partition_key`."""
        return partition_of(partition_key, self.partitions)

    @abstractmethod
    async def send_command(self, partition_key: str, message: BusMessage) -> None:
        """Durably enqueue a command on the partition that owns `partition_key`; confirmed before return.

        Raises `UnroutableError` when no partition queue takes it.
        """

    @abstractmethod
    async def consume_commands(self, handler: BatchHandler, *, max_batch: int = 1) -> Subscription:
        """Join the command workers and process this worker's share of the partitions.

        `handler` gets up to `max_batch` consecutive messages of one partition, in order. When it raises,
        each message of the batch is retried on its own, so one bad message cannot hold back the others.
        """

    @abstractmethod
    async def publish(self, routing_keys: Sequence[str], message: BusMessage) -> None:
        """Publish one event for all `routing_keys`; confirmed before return.

        A key nobody is bound to is not an error (the user is offline).
        """

    @abstractmethod
    async def open_route(self, handler: Handler, *, on_gap: GapHandler | None = None) -> DeliveryRoute:
        """Open this process's private delivery route (a gateway's queue); gone when the process is.

        `on_gap` is awaited when the route comes back after losing the broker: its bindings are restored,
        but events published in between may never have reached it, so its owner must make its clients
        catch up (resume). A bus that cannot lose events never calls it.
        """

    @abstractmethod
    async def subscribe(
        self,
        name: str,
        routing_keys: Sequence[str],
        handler: BatchHandler,
        *,
        max_batch: int = 1,
        linger: float = 0.0,
    ) -> Subscription:
        """Consume a durable queue `name` bound to `routing_keys` (`*` and `#` wildcards allowed).

        `handler` gets up to `max_batch` consecutive messages that are waiting, in order (wrap a handler of
        one message with `as_batch_handler`); a batch that fails is retried message by message, as for
        commands. Every process subscribing the same `name` competes for its messages. With `linger`
        seconds, a batch that is not full when its first message arrives waits that long for more: for a
        consumer whose cost is per batch, not per message, and who can afford the wait.
        """

    @abstractmethod
    async def parked(self, limit: int = 100) -> list[ParkedMessage]:
        """The parked messages, oldest first, without removing them."""

    @abstractmethod
    async def replay(self, message_ids: Sequence[str] | None = None) -> int:
        """Send parked messages (all, or those with the given ids) back to their origin; returns the count."""

    async def queue_depths(self) -> list[QueueDepth]:
        """The backlog of the shared queues (command partitions, this process's subscriptions, the parking
        lot), sampled now; for metrics, never per message. None known by default."""
        return []

    @abstractmethod
    async def ping(self) -> None:
        """Raise `Unavailable` if the bus cannot be reached (readiness)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop every consumer and release connections."""
