"""Messaging on the bus: client commands in, deliveries and membership changes out, users projected.

Inbound, a `ClientCommand` becomes a domain command. A body that is not a `ClientCommand` at all names
no session to answer: it raises `MalformedMessage`, and the bus parks it at once (its batch neighbours
are retried on their own and go through). A command with a bad payload does name a session, so it
becomes a `RejectCommand` and is answered with `message.rejected` (sends) or `error` (the others).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import msgspec
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from parlour.common.bus import BusMessage, MessageBus
from parlour.common.bus.port import MalformedMessage
from parlour.common.contracts import COMMAND, DELIVERY, ClientCommand, Delivery, UserRegistered, user_key
from parlour.messaging.adapters.frames import delivery_items
from parlour.messaging.application.access import MembershipCache
from parlour.messaging.application.chats import UserDirectory
from parlour.messaging.application.ports import EventPublisher, ProjectedUser
from parlour.messaging.application.processor import COMMAND_NAMES, CommandProcessor
from parlour.messaging.domain.errors import InvalidCommand
from parlour.messaging.domain.messages import (
    ChatCommand,
    DeleteMessage,
    EditMessage,
    Event,
    MarkRead,
    MembershipChanged,
    RejectCommand,
    RelayTyping,
    SendMessage,
    Sync,
)

log = structlog.get_logger(__name__)

MEMBERSHIP_KEY = "messaging.membership"
MEMBERSHIP_CHANGED = "messaging.membership.changed"
# auth's `user.registered` event (parlour/auth/adapters/events.py), mirrored: services never import
# each other, they share wire formats.
USERS_QUEUE = "messaging.users"

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_Seq = Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class _Send(msgspec.Struct):
    chat_id: _Id
    client_id: str
    body: str


class _Edit(msgspec.Struct):
    chat_id: _Id
    message_id: _Id
    body: str


class _Delete(msgspec.Struct):
    chat_id: _Id
    message_id: _Id


class _Read(msgspec.Struct):
    chat_id: _Id
    seq: _Seq


class _Typing(msgspec.Struct):
    chat_id: _Id


class _Sync(msgspec.Struct):
    chats: dict[_Id, _Seq] = {}


class _ClientIdOnly(msgspec.Struct):
    client_id: str | None = None


class _MembershipChanged(msgspec.Struct, frozen=True):
    chat_id: str
    version: int


_PAYLOADS: dict[str, tuple[type[Any], Callable[[ClientCommand, Any], ChatCommand]]] = {
    "message.send": (_Send, lambda c, p: SendMessage(c.user_id, p.chat_id, p.client_id, p.body, c.session_id)),
    "message.edit": (_Edit, lambda c, p: EditMessage(c.user_id, p.chat_id, p.message_id, p.body, c.session_id)),
    "message.delete": (_Delete, lambda c, p: DeleteMessage(c.user_id, p.chat_id, p.message_id, c.session_id)),
    "read": (_Read, lambda c, p: MarkRead(c.user_id, p.chat_id, p.seq, c.session_id)),
    "typing": (_Typing, lambda c, p: RelayTyping(c.user_id, p.chat_id, c.session_id)),
    "sync": (_Sync, lambda c, p: Sync(c.user_id, c.session_id, p.chats)),
}


def decode_command(message: BusMessage) -> ChatCommand:
    """The domain command a bus message carries; `MalformedMessage` if it names no one to answer."""
    if message.type != COMMAND:
        raise MalformedMessage(f"expected a {COMMAND!r} message, got {message.type!r}")
    try:
        command = msgspec.json.decode(message.body, type=ClientCommand)
    except msgspec.DecodeError as error:
        raise MalformedMessage(f"not a ClientCommand: {error}") from error
    known = _PAYLOADS.get(command.type)
    if known is None:
        return _reject(command, InvalidCommand(f"Unknown command type {command.type!r}."))
    payload_type, build = known
    try:
        return build(command, msgspec.json.decode(command.payload, type=payload_type))
    except msgspec.DecodeError as error:
        return _reject(command, InvalidCommand(f"The {command.type} command is malformed: {error}."))


def _reject(command: ClientCommand, error: InvalidCommand) -> RejectCommand:
    client_id = None
    if command.type == "message.send":
        try:
            client_id = msgspec.json.decode(command.payload, type=_ClientIdOnly).client_id
        except msgspec.DecodeError:
            client_id = None
    return RejectCommand(command.user_id, command.session_id, command.type, error.code, error.message, client_id)


class CommandMetrics:
    """What the command consumer counts: commands by type, and the size of each group commit."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "parlour_messaging_commands", "Client commands processed, by type.", ["type"], registry=registry
        )
        self.batch_size = Histogram(
            "parlour_messaging_batch_size",
            "Commands committed together in one transaction (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=registry,
        )


class CommandConsumer:
    """The batch handler of the command partitions: decode, then run the batch in one transaction."""

    def __init__(self, processor: CommandProcessor, metrics: CommandMetrics) -> None:
        self._processor = processor
        self._metrics = metrics

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        commands = [decode_command(message) for message in messages]
        await self._processor.execute_batch(commands)
        self._metrics.batch_size.observe(len(commands))
        for command in commands:
            self._metrics.commands.labels(COMMAND_NAMES.get(type(command), "invalid")).inc()
        log.debug("messaging.batch", size=len(commands))


class BusEventPublisher(EventPublisher):
    """Publishes the frames of one commit as ONE `Delivery` to every recipient's user key."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def publish(self, events: Sequence[Event]) -> None:
        items = [item for event in events for item in delivery_items(event)]
        if items:
            keys = sorted({user_key(user_id) for item in items for user_id in item.user_ids})
            body = msgspec.json.encode(Delivery(items=items))
            await self._bus.publish(keys, BusMessage(type=DELIVERY, body=body))
        for event in events:
            if isinstance(event, MembershipChanged):
                change = msgspec.json.encode(_MembershipChanged(event.chat_id, event.version))
                await self._bus.publish([MEMBERSHIP_KEY], BusMessage(type=MEMBERSHIP_CHANGED, body=change))


class MembershipListener:
    """Drops this worker's cached members of a chat whose membership changed on any worker."""

    def __init__(self, cache: MembershipCache) -> None:
        self._cache = cache

    async def __call__(self, message: BusMessage) -> None:
        change = msgspec.json.decode(message.body, type=_MembershipChanged)
        self._cache.invalidate(change.chat_id, change.version)


class UserProjector:
    """Feeds the users projection from auth's `user.registered` events."""

    def __init__(self, users: UserDirectory) -> None:
        self._users = users

    async def __call__(self, message: BusMessage) -> None:
        event = msgspec.json.decode(message.body, type=UserRegistered)
        await self._users.record(ProjectedUser(event.user_id, event.username, event.display_name))
