"""The gateway on the bus: commands out to messaging, session events out to presence, deliveries in."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from parlour.common import tracing
from parlour.common.bus import BusMessage, Handler, MessageBus
from parlour.common.clock import Clock
from parlour.common.contracts import COMMANDS, PRESENCE_COMMANDS_KEY, PUBLISHED_AT, SESSION_CLOSED, SESSION_OPENED
from parlour.gateway.adapters.codec import decode_delivery, encode_commands, encode_session_event
from parlour.gateway.application.hub import Hub
from parlour.gateway.application.ports import CommandSink, SessionEvents
from parlour.gateway.domain.protocol import Destination
from parlour.gateway.domain.session import Command, Session


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
    """Publishes `SessionEvent`s with routing keys `session.opened` / `session.closed`."""

    def __init__(self, bus: MessageBus, gateway_id: str, clock: Clock) -> None:
        self._bus = bus
        self._gateway_id = gateway_id
        self._clock = clock

    async def opened(self, session: Session) -> None:
        await self._publish(SESSION_OPENED, session)

    async def closed(self, session: Session) -> None:
        await self._publish(SESSION_CLOSED, session)

    async def _publish(self, kind: str, session: Session) -> None:
        body = encode_session_event(session.user_id, session.id, self._gateway_id, self._clock.now())
        await self._bus.publish([kind], BusMessage(type=kind, body=body))


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
