"""The gateway on the bus: commands out to messaging, session events out to presence, deliveries in."""

from __future__ import annotations

from collections.abc import Callable

from parlour.common.bus import BusMessage, Handler, MessageBus
from parlour.common.clock import Clock
from parlour.common.contracts import COMMAND, SESSION_CLOSED, SESSION_OPENED
from parlour.gateway.adapters.codec import decode_delivery, encode_command, encode_session_event
from parlour.gateway.application.hub import Hub
from parlour.gateway.application.ports import CommandSink, SessionEvents
from parlour.gateway.domain.session import Command, Session


class BusCommandSink(CommandSink):
    """Sends `ClientCommand`s to the partition of the command's chat (or user, for `sync`)."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def send(self, command: Command, session: Session) -> None:
        body = encode_command(command.type, session.user_id, session.id, command.payload)
        await self._bus.send_command(command.partition_key, BusMessage(type=COMMAND, body=body))


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


def delivery_handler(hub: Callable[[], Hub], delivered: Callable[[int], None]) -> Handler:
    """The route's handler: each item of a `Delivery` to the hub, in order. `hub` is looked up per message,
    as the route exists before the hub that binds it; `delivered` counts the frames handed to sessions."""

    async def handle(message: BusMessage) -> None:
        target = hub()
        count = 0
        for item in decode_delivery(message.body).items:
            count += target.deliver(item.user_ids, item.session_id, bytes(item.frame))
        delivered(count)

    return handle
