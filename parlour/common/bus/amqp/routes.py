"""Delivery routes (a gateway's private queue) and named subscriptions (a service's durable queue).

Both are re-created by `attach` after every reconnect. A route's queue is exclusive to the connection,
so the broker deletes it with the connection (and `x-expires` is the safety net); after a reconnect the
route declares a fresh queue (a new name: the old one may still be locked by the dead connection for a
moment) and binds every key it holds again. Events published while the route was away are not
delivered to it, so the route then calls its owner's `on_gap`: the gateway closes its sessions with a
code that makes clients resume from history, as after any disconnect.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import aiormq.abc
import structlog
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from pamqp.common import FieldValue

from parlour.common.bus.amqp.consumer import Link, QueueConsumer
from parlour.common.bus.port import BatchHandler, DeliveryRoute, GapHandler, Handler, Subscription, as_batch_handler
from parlour.common.errors import Unavailable

logger = structlog.get_logger(__name__)

Forget = Callable[[object], None]
_Change = tuple[str, bool, asyncio.Future[None]]  # routing key, bind (or unbind), settled once applied


class AmqpRoute(DeliveryRoute):
    """A gateway process's delivery route: an exclusive, auto-delete queue bound to user keys."""

    def __init__(
        self, link: Link, handler: Handler, *, expires_ms: int, forget: Forget, on_gap: GapHandler | None = None
    ) -> None:
        self._link = link
        self._on_gap = on_gap
        self._expires_ms = expires_ms
        self._forget = forget
        self._token = uuid.uuid4().hex[:12]
        self._generation = 0
        self._keys: set[str] = set()
        self._changes: list[_Change] = []  # waiting for the next flush
        self._lock = asyncio.Lock()
        self._consumer = QueueConsumer(link, "", as_batch_handler(handler), dedupe_fanout=True)
        self._attached = False

    @property
    def queue_name(self) -> str:
        """The name of the route's current queue (it changes after a reconnect)."""
        return self._consumer.queue

    async def attach(self) -> None:
        """Declare a fresh queue on the current connection, bind every held key, consume it."""
        async with self._lock:
            self._generation += 1
            queue = self._link.topology.route_queue(f"{self._token}.{self._generation}")
            control = await self._link.control()
            arguments: dict[str, FieldValue] = {"x-expires": self._expires_ms}
            await control.queue_declare(queue, exclusive=True, auto_delete=True, arguments=arguments)
            await _bind_all(control, queue, self._link.topology.events, sorted(self._keys))
            self._consumer.queue = queue
            await self._consumer.attach()
            self._attached = True
        if self._generation > 1 and self._on_gap is not None:
            await self._report_gap()

    async def _report_gap(self) -> None:
        assert self._on_gap is not None
        logger.warning("bus.route_gap", queue=self.queue_name)
        try:
            await self._on_gap()
        except Exception:
            logger.exception("bus.route_gap_handler_failed")

    def detach(self) -> None:
        self._attached = False
        self._consumer.detach()

    async def bind(self, routing_key: str) -> None:
        await self._change(routing_key, bind=True)

    async def unbind(self, routing_key: str) -> None:
        await self._change(routing_key, bind=False)

    async def _change(self, routing_key: str, *, bind: bool) -> None:
        """Bind or unbind as a group commit: whoever holds the lock next applies every change that waits,
        in order, in one burst to the broker (binds without waiting for each answer), so the connects of
        one loop iteration share a round trip rather than taking an iteration each. A change is held in
        `_keys` even when the broker is away or refuses it: bound again on reconnect."""
        done = asyncio.get_running_loop().create_future()
        self._changes.append((routing_key, bind, done))
        async with self._lock:
            changes, self._changes = self._changes, []
            if changes:
                await self._flush(changes)
        await done  # settled by this flush or by the one before it

    async def _flush(self, changes: Sequence[_Change]) -> None:
        outcome: BaseException | None = Unavailable("the route's binding was interrupted: try again shortly.")
        try:
            await self._apply([(key, bind) for key, bind, _ in changes])
            outcome = None
        except Unavailable as error:
            outcome = error
        finally:
            for _, _, done in changes:
                if outcome is None:
                    done.set_result(None)
                else:
                    done.set_exception(outcome)
                    done.exception()  # retrieved here: its caller may have stopped waiting

    async def _apply(self, changes: Sequence[tuple[str, bool]]) -> None:
        rpcs: list[tuple[str, bool]] = []
        for key, bind in changes:
            if bind == (key in self._keys):
                continue  # bound already, or not bound
            (self._keys.add if bind else self._keys.discard)(key)
            rpcs.append((key, bind))
        if not rpcs or not self._attached:
            return
        try:
            control = await self._link.control()
            for index, (key, bind) in enumerate(rpcs):
                if bind:
                    await _bind(control, self.queue_name, self._link.topology.events, key, wait=index == len(rpcs) - 1)
                else:  # AMQP has no no-wait unbind: an unbind is a barrier of its own
                    await control.queue_unbind(self.queue_name, self._link.topology.events, routing_key=key)
        except CONNECTION_EXCEPTIONS as error:
            raise Unavailable("RabbitMQ did not take the route binding: try again shortly.") from error

    async def close(self) -> None:
        self._forget(self)
        attached, self._attached = self._attached, False
        await self._consumer.stop(graceful=False)
        if attached:
            try:
                control = await self._link.control()
                await control.queue_delete(self.queue_name)
            except (*CONNECTION_EXCEPTIONS, Unavailable):
                pass  # the queue is exclusive: it goes with the connection anyway


class AmqpSubscription(Subscription):
    """A consumer of the durable service queue `<ns>.svc.<name>`, bound to `routing_keys`."""

    def __init__(
        self,
        link: Link,
        name: str,
        routing_keys: Sequence[str],
        handler: BatchHandler,
        *,
        max_batch: int = 1,
        linger: float = 0.0,
        forget: Forget,
    ) -> None:
        self._link = link
        self._keys = tuple(routing_keys)
        self._forget = forget
        self.queue_name = link.topology.service_queue(name)
        self._consumer = QueueConsumer(link, self.queue_name, handler, max_batch=max_batch, linger=linger)

    async def attach(self) -> None:
        """Declare the queue and its bindings (idempotent), then consume it."""
        control = await self._link.control()
        await control.queue_declare(self.queue_name, durable=True)
        for key in self._keys:
            await control.queue_bind(self.queue_name, self._link.topology.events, routing_key=key)
        await self._consumer.attach()

    def detach(self) -> None:
        self._consumer.detach()

    async def close(self) -> None:
        self._forget(self)
        await self._consumer.stop(graceful=False)


async def _bind_all(control: aiormq.abc.AbstractChannel, queue: str, exchange: str, keys: Sequence[str]) -> None:
    """Bind `queue` to every key in one burst (see `_bind`)."""
    for index, key in enumerate(keys):
        await _bind(control, queue, exchange, key, wait=index == len(keys) - 1)


async def _bind(control: aiormq.abc.AbstractChannel, queue: str, exchange: str, key: str, *, wait: bool) -> None:
    """One bind of a burst. Only the last is waited for: a bind sent with no-wait gets no answer and a
    failed one closes the channel, and the channel applies methods in order, so the answer to the
    last says every bind before it took, and a closed channel fails the last."""
    if wait:
        await control.queue_bind(queue, exchange, routing_key=key)
    else:
        await control.queue_bind(queue, exchange, routing_key=key, nowait=True)
