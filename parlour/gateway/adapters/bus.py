"""The gateway on the bus: commands out to messaging, session events out to presence, deliveries in."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from parlour.common.bus import BusMessage, Handler, MessageBus
from parlour.common.clock import Clock
from parlour.common.contracts import COMMANDS, PRESENCE_COMMANDS_KEY, SESSION_CLOSED, SESSION_OPENED
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


def delivery_handler(hub: Callable[[], Hub], delivered: Callable[[int], None]) -> Handler:
    """The route's handler: the items of a `Delivery` to the hub, in order, each socket written once.
    `hub` is looked up per message, as the route exists before the hub that binds it; `delivered` counts
    the frames handed to sessions."""

    async def handle(message: BusMessage) -> None:
        items = decode_delivery(message.body).items
        delivered(hub().deliver_batch((item.user_ids, item.session_id, bytes(item.frame)) for item in items))

    return handle
