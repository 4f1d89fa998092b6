"""The RabbitMQ message bus of distributed mode, on aio-pika (topology: parlour/common/bus/amqp/topology.py).

One connection per process, with a publisher channel (confirms; unroutable mandatory messages raise), a
control channel (declarations, bindings) and one channel per consumer: a partition, a subscription or a
route, never a channel per user.

Reconnection is ours, not aio-pika's robust connection: when the connection or any of its channels
fails, a supervisor drops the connection, reconnects with backoff, declares the topology again and
re-attaches every consumer (partitions of this worker's share, subscriptions, routes with a fresh queue
and all their keys). A publish during an outage waits for the connection up to `publish_timeout`
seconds, then raises `Unavailable`; it never drops a message silently. A publish whose confirm was lost
is sent again, so delivery is at least once (message ids make handlers idempotent).

An event for many users travels as one AMQP message: the first key as routing key, the rest in the `BCC`
header (the broker removes it before delivery, so a gateway does not receive a thousand keys it does not
need). The header must fit in one AMQP frame, so a larger fan-out is split into several messages marked
`parlour-fanout`, and a route drops the extra copies of a message id it has just processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import aio_pika
import aiormq.abc
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError, PublishError

from parlour.common.bus import port
from parlour.common.bus.amqp import codec, parking, topology
from parlour.common.bus.amqp.routes import AmqpRoute, AmqpSubscription
from parlour.common.bus.amqp.topology import Topology
from parlour.common.bus.amqp.workers import CommandWorker
from parlour.common.bus.policy import DEFAULT_RETRY, RetryPolicy, error_summary
from parlour.common.bus.port import BusMessage, DeliveryRoute, MessageBus, ParkedMessage, Subscription, UnroutableError
from parlour.common.clock import Clock
from parlour.common.errors import Unavailable
from parlour.common.kv.port import KeyValueStore

log = structlog.get_logger(__name__)

_RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
# Routing keys of one event that fit in one AMQP header frame (frame_max is 128 KiB by default).
_FANOUT_HEADER_BYTES = 60_000
_BROKER_ERRORS = (*CONNECTION_EXCEPTIONS, TimeoutError)


class _Attachment(Protocol):
    async def attach(self) -> None: ...

    def detach(self) -> None: ...


class AmqpMessageBus(MessageBus):
    """The bus on RabbitMQ. Build it with `await AmqpMessageBus.connect(...)`."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        kv: KeyValueStore,
        clock: Clock,
        policy: RetryPolicy,
        partitions: int,
        prefetch: int,
        route_expires_ms: int,
        publish_timeout: float,
        assignment_interval: float,
        worker_ttl: float,
    ) -> None:
        self.topology = Topology(namespace, partitions, policy.delays_ms())
        self.policy = policy
        self.clock = clock
        self.prefetch = prefetch
        self.connection_name = f"parlour-bus {namespace} {socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._url = url
        self._kv = kv
        self._route_expires_ms = route_expires_ms
        self._publish_timeout = publish_timeout
        self._assignment = (assignment_interval, worker_ttl)
        self._connection: AbstractConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._control: AbstractChannel | None = None
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._attach_lock = asyncio.Lock()
        self._attachments: dict[int, _Attachment] = {}
        self._service_queues: set[str] = set()
        self._parking_lock = asyncio.Lock()
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        namespace: str,
        kv: KeyValueStore,
        clock: Clock,
        partitions: int = 16,
        policy: RetryPolicy = DEFAULT_RETRY,
        prefetch: int = 256,
        route_expires_ms: int = 10_000,
        publish_timeout: float = 5.0,
        assignment_interval: float = 1.0,
        worker_ttl: float = 5.0,
    ) -> AmqpMessageBus:
        """Connect, declare the topology of `namespace`, and keep the connection up until `close()`."""
        bus = cls(
            url, namespace=namespace, kv=kv, clock=clock, policy=policy,
            partitions=partitions, prefetch=prefetch, route_expires_ms=route_expires_ms,
            publish_timeout=publish_timeout, assignment_interval=assignment_interval, worker_ttl=worker_ttl,
        )  # fmt: skip
        try:
            await bus._establish()
        except _BROKER_ERRORS as error:
            await bus._drop_connection()
            raise Unavailable(f"RabbitMQ is unreachable: {error_summary(error)}") from error
        bus._supervisor = asyncio.create_task(bus._supervise(), name="bus.supervisor")
        return bus

    # -- commands ---------------------------------------------------------------------------------

    @property
    def partitions(self) -> int:
        return self.topology.partitions

    async def send_command(self, partition_key: str, message: BusMessage) -> None:
        partition = self.partition_of(partition_key)
        await self.publish_raw(self.topology.commands, str(partition), codec.encode(message), mandatory=True)

    async def consume_commands(self, handler: port.BatchHandler, *, max_batch: int = 1) -> Subscription:
        await self._wait_ready(asyncio.get_running_loop().time() + self._publish_timeout)
        interval, ttl = self._assignment
        worker = CommandWorker(
            self, self._kv, handler, max_batch=max_batch, interval=interval, ttl=ttl, forget=self._forget
        )
        await worker.start()
        try:
            await self._register(worker)
        except BaseException:
            await worker.close()
            raise
        return worker

    # -- events -----------------------------------------------------------------------------------

    async def publish(self, routing_keys: Sequence[str], message: BusMessage) -> None:
        chunks = _fanout_chunks(routing_keys)
        for keys in chunks:
            headers: dict[str, Any] = {"BCC": keys[1:]} if len(keys) > 1 else {}
            if len(chunks) > 1:
                headers[codec.FANOUT] = "1"
            await self.publish_raw(self.topology.events, keys[0], codec.encode(message, headers), mandatory=False)

    async def open_route(self, handler: port.Handler, *, on_gap: port.GapHandler | None = None) -> DeliveryRoute:
        route = AmqpRoute(self, handler, expires_ms=self._route_expires_ms, forget=self._forget, on_gap=on_gap)
        await self._register(route)
        return route

    async def subscribe(
        self,
        name: str,
        routing_keys: Sequence[str],
        handler: port.BatchHandler,
        *,
        max_batch: int = 1,
        linger: float = 0.0,
    ) -> Subscription:
        subscription = AmqpSubscription(
            self, name, routing_keys, handler, max_batch=max_batch, linger=linger, forget=self._forget
        )
        self._service_queues.add(subscription.queue_name)
        await self._register(subscription)
        return subscription

    # -- parking lot ------------------------------------------------------------------------------

    async def parked(self, limit: int = 100) -> list[ParkedMessage]:
        async with self._parking_lock, self._private_channel() as channel:
            return await parking.read_parked(channel, self.topology.parked, limit)

    async def replay(self, message_ids: Sequence[str] | None = None) -> int:
        async def to_origin(origin: str, message: codec.Outgoing) -> None:
            await self.publish_raw("", origin, message, mandatory=True)

        async with self._parking_lock, self._private_channel() as channel:
            return await parking.replay_parked(channel, self.topology.parked, message_ids, to_origin)

    async def queue_depths(self) -> list[port.QueueDepth]:
        """Message and consumer counts from a passive declare of each shared queue, on a private channel
        (a queue another process deleted closes the channel, not the bus)."""
        names = [self.topology.partition_queue(p) for p in range(self.partitions)]
        names += sorted(self._service_queues)
        depths: list[port.QueueDepth] = []
        async with self._private_channel() as channel:
            amqp = await channel.get_underlay_channel()
            for name in [*names, self.topology.parked]:
                declared = await amqp.queue_declare(name, passive=True)
                depths.append(
                    port.QueueDepth(
                        name, declared.message_count or 0, declared.consumer_count or 0, name == self.topology.parked
                    )
                )
        return depths

    # -- lifecycle --------------------------------------------------------------------------------

    async def ping(self) -> None:
        if not self.connected or self._control is None:
            raise Unavailable("RabbitMQ is unreachable: the bus is reconnecting.")
        try:
            await asyncio.wait_for(self._control.set_qos(prefetch_count=0), self._publish_timeout)
        except _BROKER_ERRORS as error:
            raise Unavailable(f"RabbitMQ does not answer: {error_summary(error)}") from error

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ready.clear()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor})
        for attachment in list(self._attachments.values()):
            if isinstance(attachment, Subscription):
                await attachment.close()
        await self._drop_connection()

    async def delete_topology(self) -> None:
        """Delete every exchange and queue of this namespace that this bus knows of (tests, teardown)."""
        async with self._private_channel() as channel:
            await topology.delete(channel, self.topology, self._service_queues)

    # -- the link consumers use (consumer.Link) -----------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def open_channel(self) -> AbstractChannel:
        """A new channel on the current connection."""
        if self._connection is None or self._connection.is_closed:
            raise Unavailable("RabbitMQ is unreachable: the bus is reconnecting.")
        channel = self._connection.channel(publisher_confirms=False)
        await channel.initialize()
        return channel

    async def control(self) -> aiormq.abc.AbstractChannel:
        """The control channel of the current connection, for declarations and bindings."""
        if self._control is None or self._control.is_closed:
            raise Unavailable("RabbitMQ is unreachable: the bus is reconnecting.")
        return await self._control.get_underlay_channel()

    async def publish_raw(self, exchange: str, routing_key: str, message: codec.Outgoing, *, mandatory: bool) -> None:
        """Publish and wait for the broker's confirm, across a reconnect if it takes under `publish_timeout`."""
        deadline = asyncio.get_running_loop().time() + self._publish_timeout
        while True:
            channel = await self._wait_ready(deadline)
            try:
                amqp = await channel.get_underlay_channel()
                await amqp.basic_publish(
                    message.body, exchange=exchange, routing_key=routing_key, properties=message.properties,
                    mandatory=mandatory, timeout=max(0.01, deadline - asyncio.get_running_loop().time()),
                )  # fmt: skip
                return
            except PublishError as error:
                raise UnroutableError(f"No queue took the message for {exchange!r}/{routing_key!r}.") from error
            except DeliveryError as error:
                raise Unavailable("RabbitMQ refused the message (negative confirm): try again.") from error
            except _BROKER_ERRORS as error:
                if channel.is_closed:
                    self.channel_failed(error)
                if asyncio.get_running_loop().time() >= deadline:
                    raise Unavailable(f"RabbitMQ did not confirm the message: {error_summary(error)}") from error
                await asyncio.sleep(0.05)  # then wait for the supervisor's reconnect, and send it again

    def channel_failed(self, error: BaseException | None) -> None:
        """A channel or the connection failed: reconnect everything."""
        if not self._closed:
            self._ready.clear()
            self._lost.set()

    # -- connection supervision -------------------------------------------------------------------

    async def _wait_ready(self, deadline: float) -> AbstractChannel:
        if self._closed:
            raise Unavailable("The message bus is closed: the process is shutting down.")
        try:
            async with asyncio.timeout_at(deadline):
                await self._ready.wait()
        except TimeoutError:
            raise Unavailable("RabbitMQ is unreachable: the bus is reconnecting, try again shortly.") from None
        if self._publisher is None:
            raise Unavailable("The bus is closed.")
        return self._publisher

    async def _register(self, attachment: _Attachment) -> None:
        await self._wait_ready(asyncio.get_running_loop().time() + self._publish_timeout)
        async with self._attach_lock:
            self._attachments[id(attachment)] = attachment
            if self.connected:
                try:
                    await attachment.attach()
                except _BROKER_ERRORS as error:
                    self._attachments.pop(id(attachment), None)
                    attachment.detach()
                    raise Unavailable(f"RabbitMQ did not take the consumer: {error_summary(error)}") from error

    def _forget(self, attachment: object) -> None:
        self._attachments.pop(id(attachment), None)

    async def _establish(self) -> None:
        self._lost.clear()
        connection = await aio_pika.connect(
            self._url, timeout=self._publish_timeout, client_properties={"connection_name": self.connection_name}
        )
        self._connection = connection
        connection.close_callbacks.add(self._on_closed)
        self._publisher = connection.channel(publisher_confirms=True, on_return_raises=True)
        self._control = connection.channel(publisher_confirms=False)
        for channel in (self._publisher, self._control):
            await channel.initialize()
            channel.close_callbacks.add(self._on_closed)
        await topology.declare(self._control, self.topology)
        async with self._attach_lock:
            for attachment in list(self._attachments.values()):
                await attachment.attach()
        if self._lost.is_set():
            raise aiormq.exceptions.ConnectionClosed(320, "lost while re-attaching consumers")
        self._ready.set()

    def _on_closed(self, sender: Any, error: BaseException | None) -> None:
        if sender is not None and sender in (self._connection, self._publisher, self._control):
            self.channel_failed(error)

    async def _supervise(self) -> None:
        while not self._closed:
            await self._lost.wait()
            log.warning("bus.connection_lost", connection=self.connection_name)
            await self._reconnect()

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._closed:
            for attachment in self._attachments.values():
                attachment.detach()
            await self._drop_connection()
            try:
                await self._establish()
            except Exception as error:  # every failure means the same: wait, then try again
                delay = _RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)]
                log.warning("bus.reconnect_failed", error=error_summary(error), retry_in=delay)
                attempt += 1
                await asyncio.sleep(delay)
            else:
                log.info("bus.reconnected", connection=self.connection_name, attempts=attempt + 1)
                return

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._publisher = self._control = None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except _BROKER_ERRORS as error:
                log.debug("bus.close_failed", error=error_summary(error))

    @contextlib.asynccontextmanager
    async def _private_channel(self) -> AsyncIterator[AbstractChannel]:
        """A short-lived channel of the bus's connection; closing it requeues whatever it did not ack."""
        await self._wait_ready(asyncio.get_running_loop().time() + self._publish_timeout)
        try:
            channel = await self.open_channel()
        except _BROKER_ERRORS as error:
            raise Unavailable(f"RabbitMQ is unreachable: {error_summary(error)}") from error
        try:
            yield channel
        except _BROKER_ERRORS as error:
            raise Unavailable(f"RabbitMQ failed the operation: {error_summary(error)}") from error
        finally:
            if not channel.is_closed:
                try:
                    await channel.close()
                except _BROKER_ERRORS as error:
                    log.debug("bus.close_failed", error=error_summary(error))


def _fanout_chunks(routing_keys: Sequence[str]) -> list[list[str]]:
    chunks: list[list[str]] = []
    size = _FANOUT_HEADER_BYTES
    for key in dict.fromkeys(routing_keys):  # unique, in order
        cost = len(key.encode()) + 8  # type tag and length prefix of an AMQP array entry, rounded up
        if size + cost > _FANOUT_HEADER_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(key)
        size += cost
    return chunks
