"""The RabbitMQ topology of the bus: names, arguments and declarations (docs/architecture.md draws it).

Every name starts with the namespace, so several deployments (and test runs) share one broker:

| name | kind | arguments | bound |
|---|---|---|---|
| `<ns>.commands` | direct exchange, durable | | |
| `<ns>.cmd.<i>` | queue, durable | `x-single-active-consumer` | to `<ns>.commands` with key `<i>` |
| `<ns>.events` | topic exchange, durable | | |
| `<ns>.svc.<name>` | queue, durable | | to `<ns>.events` with the subscribed keys |
| `<ns>.route.<id>` | queue, exclusive, auto-delete | `x-expires` | to `<ns>.events` with user keys |
| `<ns>.retry` | headers exchange, durable | | |
| `<ns>.retry.<ms>` | queue, durable | `x-dead-letter-exchange: ""` | to `<ns>.retry` on header `parlour-retry-delay` |
| `<ns>.parked` | queue, durable | | (published to through the default exchange) |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import aiormq.abc
from aio_pika.abc import AbstractChannel
from pamqp.common import FieldValue

# The retry exchange routes on this header. It must not start with "x-": RabbitMQ's headers exchange
# ignores such headers when matching, and would then route every message to every retry queue.
RETRY_DELAY_HEADER = "parlour-retry-delay"


@dataclass(frozen=True, slots=True)
class Topology:
    """The names of one namespace's exchanges and queues."""

    namespace: str
    partitions: int
    retry_delays_ms: tuple[int, ...]

    @property
    def commands(self) -> str:
        return f"{self.namespace}.commands"

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def retry(self) -> str:
        return f"{self.namespace}.retry"

    @property
    def parked(self) -> str:
        return f"{self.namespace}.parked"

    def partition_queue(self, partition: int) -> str:
        return f"{self.namespace}.cmd.{partition}"

    def service_queue(self, name: str) -> str:
        return f"{self.namespace}.svc.{name}"

    def route_queue(self, token: str) -> str:
        return f"{self.namespace}.route.{token}"

    def retry_queue(self, delay_ms: int) -> str:
        return f"{self.namespace}.retry.{delay_ms}"

    def fixed_queues(self) -> list[str]:
        """Every queue `declare` creates."""
        return [
            *(self.partition_queue(partition) for partition in range(self.partitions)),
            *(self.retry_queue(delay) for delay in self.retry_delays_ms),
            self.parked,
        ]


async def declare(channel: AbstractChannel, topology: Topology) -> None:
    """Declare every exchange and durable queue of `topology` (idempotent; run on every (re)connect)."""
    amqp = await channel.get_underlay_channel()
    await amqp.exchange_declare(topology.commands, exchange_type="direct", durable=True)
    await amqp.exchange_declare(topology.events, exchange_type="topic", durable=True)
    await amqp.exchange_declare(topology.retry, exchange_type="headers", durable=True)
    for partition in range(topology.partitions):
        queue = topology.partition_queue(partition)
        await amqp.queue_declare(queue, durable=True, arguments={"x-single-active-consumer": True})
        await amqp.queue_bind(queue, topology.commands, routing_key=str(partition))
    for delay in topology.retry_delays_ms:
        await _declare_retry_queue(amqp, topology, delay)
    await amqp.queue_declare(topology.parked, durable=True)


async def _declare_retry_queue(amqp: aiormq.abc.AbstractChannel, topology: Topology, delay_ms: int) -> None:
    # Dead-lettering to the default exchange keeps the routing key the retry was published with: the
    # name of the origin queue. One queue per delay, because RabbitMQ only expires messages at the head
    # of a queue: a long delay in front would hold back shorter ones behind it.
    queue = topology.retry_queue(delay_ms)
    await amqp.queue_declare(queue, durable=True, arguments={"x-dead-letter-exchange": ""})
    match: dict[str, FieldValue] = {"x-match": "all", RETRY_DELAY_HEADER: str(delay_ms)}
    await amqp.queue_bind(queue, topology.retry, arguments=match)


async def delete(channel: AbstractChannel, topology: Topology, queues: Iterable[str] = ()) -> None:
    """Delete every exchange and queue of `topology`, and the extra `queues` (services, routes)."""
    amqp = await channel.get_underlay_channel()
    for queue in {*topology.fixed_queues(), *queues}:
        await amqp.queue_delete(queue)
    for exchange in (topology.commands, topology.events, topology.retry):
        await amqp.exchange_delete(exchange)
