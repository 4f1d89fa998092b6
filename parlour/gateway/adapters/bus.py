"""The gateway on the bus: commands out to messaging, session events out to presence, deliveries in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Literal

import structlog

from parlour.common import tracing
from parlour.common.bus import BusMessage, Handler, MessageBus
from parlour.common.clock import Clock
from parlour.common.contracts import COMMANDS, PRESENCE_COMMANDS_KEY, PUBLISHED_AT, SESSION_EVENTS, SessionEvent
from parlour.gateway.adapters.codec import decode_delivery, encode_commands, encode_session_events
from parlour.gateway.application.hub import Hub
from parlour.gateway.application.ports import CommandSink, SessionEvents
from parlour.gateway.domain.protocol import Destination
from parlour.gateway.domain.session import Command, Session

logger = structlog.get_logger(__name__)
_STOPPED = "the gateway stopped publishing session events"


class BusCommandSink(CommandSink):
    """Sends the commands of one partition as one `CommandBatch` bus message: to messaging's partition
    queue, or published on presence's topic."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    def partition_of(self, partition_key: str) -> int:
        return self._bus.partition_of(partition_key)

    async def send(self, commands: Sequence[tuple[Command, Session]]) -> None:
        body = encode_commands([(session.user_id, session.id, command.payload) for command, session in commands])
        first = commands[0][0]
        if first.destination is Destination.PRESENCE:
            await self._bus.publish([PRESENCE_COMMANDS_KEY], BusMessage(type=COMMANDS, body=body))
        else:
            await self._bus.send_command(first.partition_key, BusMessage(type=COMMANDS, body=body))


class BusSessionEvents(SessionEvents):
    """Publishes session events in batches on `session.events`: the events that come while one publication
    is in flight leave together in the next, as one `SessionEvents` bus message, in the order they came (a
    group commit: no timer, batches grow with the rate). Each event's future is settled once its batch is
    confirmed (True) or could not be published (False, logged once for the batch).

    Waiting events are bounded by the sessions opening or closing at once (one each). `run` is the
    flusher (a supervised task); when it stops, whatever still waits, and whatever comes after, is False."""

    def __init__(self, bus: MessageBus, gateway_id: str, clock: Clock, *, max_batch: int = 1_000) -> None:
        self._bus = bus
        self._gateway_id = gateway_id
        self._clock = clock
        self._max_batch = max_batch
        self._waiting: list[tuple[SessionEvent, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._stopped = False

    def opened(self, session: Session) -> asyncio.Future[bool]:
        return self._tell("opened", session)

    def closed(self, session: Session) -> asyncio.Future[bool]:
        return self._tell("closed", session)

    def _tell(self, kind: Literal["opened", "closed"], session: Session) -> asyncio.Future[bool]:
        event = SessionEvent(
            kind=kind, user_id=session.user_id, session_id=session.id, gateway_id=self._gateway_id, at=self._clock.now()
        )
        done = asyncio.get_running_loop().create_future()
        if self._stopped:
            logger.warning("gateway.session_event_failed", events=1, error=_STOPPED)
            done.set_result(False)
            return done
        self._waiting.append((event, done))
        self._wake.set()
        return done

    async def run(self) -> None:
        """Publish what waits, batch after batch, until cancelled."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._waiting:
                    batch = self._waiting[: self._max_batch]
                    del self._waiting[: self._max_batch]
                    await self._publish(batch)
        finally:
            self._stopped = True
            if self._waiting:
                logger.warning("gateway.session_event_failed", events=len(self._waiting), error=_STOPPED)
            _settle(self._waiting, published=False)
            self._waiting.clear()

    async def _publish(self, batch: list[tuple[SessionEvent, asyncio.Future[bool]]]) -> None:
        body = encode_session_events([event for event, _ in batch])
        try:
            await self._bus.publish([SESSION_EVENTS], BusMessage(type=SESSION_EVENTS, body=body))
        except Exception as error:  # the bus is down: presence hears of these sessions with their next event
            logger.warning("gateway.session_event_failed", events=len(batch), error=f"{type(error).__name__}: {error}")
            _settle(batch, published=False)
        else:
            _settle(batch, published=True)


def _settle(batch: Sequence[tuple[SessionEvent, asyncio.Future[bool]]], *, published: bool) -> None:
    for _, done in batch:
        if not done.done():  # else its session stopped waiting (cancelled)
            done.set_result(published)


def delivery_handler(
    hub: Callable[[], Hub], delivered: Callable[[int], None], latency: Callable[[float], None] | None = None
) -> Handler:
    """The route's handler: the items of a `Delivery` to the hub, in order, each socket written once.
    `hub` is looked up per message, as the route exists before the hub that binds it; `delivered` counts
    the frames handed to sessions, `latency` gets the seconds since messaging published the delivery
    (wall time: the two ends are different processes). The hub writes to every socket that can take data
    now before it returns, so the `deliver` span (while tracing) covers those writes."""

    async def handle(message: BusMessage) -> None:
        items = decode_delivery(message.body).items
        with tracing.span("deliver", attributes={"parlour.delivery.items": len(items)}):
            delivered(hub().deliver_batch((item.user_ids, item.session_id, bytes(item.frame)) for item in items))
        published = _seconds(message.headers.get(PUBLISHED_AT))
        if latency is not None and published is not None:
            latency(max(0.0, time.time() - published))

    return handle


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None
