"""Messaging on the bus: client commands in, deliveries and service events out, users projected.

Inbound, a `CommandBatch` becomes domain commands, each through the builder of its contract struct
(`BUILDERS`, one per forwarded command of parlour/common/contracts/commands.py; a test checks none is
missing). A body that is not a `CommandBatch` at all names no session to answer: it raises
`MalformedMessage`, and the bus parks it at once. A command inside it that does not decode does name a
session, so it becomes a `RejectCommand` and is answered with `message.rejected` (sends) or `error`.

Outbound, the events of one commit become a constant number of bus messages (`BusEventChannel.render`):
one `Delivery` of client frames for every recipient's user key, and one `ServiceEvents` per kind of
service event on `messaging.<type>`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from parlour.common import tracing
from parlour.common.bus import BusMessage, MessageBus
from parlour.common.bus.port import MalformedMessage
from parlour.common.contracts import (
    COMMANDS,
    DELIVERY,
    USER_DELETED,
    CommandBatch,
    Delivery,
    UserDeleted,
    UserRegistered,
    published_now,
    user_key,
)
from parlour.common.contracts import commands as wire
from parlour.common.contracts import events as service
from parlour.common.contracts.limits import FrameEnvelope, string_or_none
from parlour.common.kv import KeyValueStore
from parlour.messaging.adapters.frames import delivery_items
from parlour.messaging.application.access import MembershipCache
from parlour.messaging.application.chats import UserDirectory
from parlour.messaging.application.ports import EventChannel, ProjectedUser, Publication, WriterRegistry
from parlour.messaging.application.processor import CommandProcessor
from parlour.messaging.domain.errors import InvalidCommand
from parlour.messaging.domain.messages import (
    ChatCommand,
    DeleteMessage,
    EditMessage,
    Event,
    MarkRead,
    MembershipChanged,
    MessageDeleted,
    MessageEdited,
    MessageReacted,
    MessageSent,
    ReactToMessage,
    ReadCursorMoved,
    RejectCommand,
    RelayTyping,
    SendMessage,
    Sync,
)

log = structlog.get_logger(__name__)

# auth's `user.registered` event (parlour/auth/adapters/events.py), mirrored: services never import
# each other, they share wire formats.
USERS_QUEUE = "messaging.users"
MEMBERS_CHANGED_KEY = service.service_key(service.ChatMembersChanged)

Builder = Callable[[str, str, Any], ChatCommand]

# Each forwarded contract command, as the domain command it becomes (actor, session id, struct).
BUILDERS: dict[type[wire.ClientFrame], tuple[type[Any], Builder]] = {
    wire.SendMessage: (
        SendMessage,
        lambda user, session, f: SendMessage(user, f.chat_id, f.client_id, f.body, session, f.reply_to),
    ),
    wire.EditMessage: (
        EditMessage,
        lambda user, session, f: EditMessage(user, f.chat_id, f.message_id, f.body, session),
    ),
    wire.DeleteMessage: (DeleteMessage, lambda user, session, f: DeleteMessage(user, f.chat_id, f.message_id, session)),
    wire.ReactToMessage: (
        ReactToMessage,
        lambda user, session, f: ReactToMessage(user, f.chat_id, f.message_id, f.emoji, not f.remove, session),
    ),
    wire.MarkRead: (MarkRead, lambda user, session, f: MarkRead(user, f.chat_id, f.seq, session)),
    wire.StartTyping: (RelayTyping, lambda user, session, f: RelayTyping(user, f.chat_id, session)),
    wire.Resume: (Sync, lambda user, session, f: Sync(user, session, f.chats)),
}
# The protocol's name of each domain command, for the answers that name what they answer.
COMMAND_NAMES: dict[type[Any], str] = {domain: wire.command_type(frame) for frame, (domain, _) in BUILDERS.items()}

_batch_decoder = msgspec.json.Decoder(CommandBatch)
_frame_decoder = msgspec.json.Decoder(wire.ForwardedFrame)


def decode_commands(message: BusMessage) -> list[ChatCommand]:
    """The domain commands a bus message carries, in order; `MalformedMessage` if it names no one."""
    if message.type != COMMANDS:
        raise MalformedMessage(f"expected a {COMMANDS!r} message, got {message.type!r}")
    try:
        batch = _batch_decoder.decode(message.body)
    except (msgspec.DecodeError, RecursionError) as error:
        raise MalformedMessage(f"not a CommandBatch: {error}") from error
    return [_command(command.user_id, command.session_id, command.command) for command in batch.commands]


def _command(user_id: str, session_id: str, raw: msgspec.Raw) -> ChatCommand:
    try:
        frame = _frame_decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as error:
        return _reject(user_id, session_id, raw, f"The command is malformed: {error}.")
    _, build = BUILDERS[type(frame)]
    return build(user_id, session_id, frame)


def _reject(user_id: str, session_id: str, raw: msgspec.Raw, reason: str) -> RejectCommand:
    try:
        envelope = msgspec.json.decode(raw, type=FrameEnvelope)
    except (msgspec.DecodeError, RecursionError):
        envelope = FrameEnvelope()
    name = string_or_none(envelope.type) or "unknown"
    client_id = string_or_none(envelope.client_id) if name == wire.command_type(wire.SendMessage) else None
    error = InvalidCommand(reason)
    return RejectCommand(user_id, session_id, name, error.code, error.message, client_id)


class CommandMetrics:
    """What the command consumer counts: commands by type, and the size of each group commit."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "parlour_messaging_commands", "Client commands processed, by type.", ["type"], registry=registry
        )
        self.batch_size = Histogram(
            "parlour_messaging_batch_size",
            "Commands committed together in one transaction (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=registry,
        )


class CommandConsumer:
    """The batch handler of the command partitions: decode, then run the batch in one transaction."""

    def __init__(self, processor: CommandProcessor, metrics: CommandMetrics) -> None:
        self._processor = processor
        self._metrics = metrics

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        commands = [command for message in messages for command in decode_commands(message)]
        await self._processor.execute_batch(commands)
        self._metrics.batch_size.observe(len(commands))
        counts: dict[str, int] = {}
        for command in commands:
            name = COMMAND_NAMES.get(type(command), "invalid")
            counts[name] = counts.get(name, 0) + 1
        for name, count in counts.items():
            self._metrics.commands.labels(name).inc(count)


class EventMetrics:
    """What messaging publishes, by kind of event (`message_sent`, `read_cursor_moved`, ...), counted per
    commit: the message rate by kind."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "parlour_messaging_events", "Events of committed work published, by kind.", ["kind"], registry=registry
        )
        self.outbox_lag = Gauge(
            "parlour_outbox_lag_seconds",
            "Age of this process's oldest outbox entry not yet published (0 while the relay keeps up).",
            registry=registry,
        )
        self._children: dict[type[Any], Any] = {}

    def count(self, events: Sequence[Event]) -> None:
        """Count `events` (one increment per kind present)."""
        counts: dict[type[Any], int] = {}
        for event in events:
            counts[type(event)] = counts.get(type(event), 0) + 1
        for kind, count in counts.items():
            child = self._children.get(kind)
            if child is None:
                child = self._children[kind] = self.events.labels(_snake(kind.__name__))
            child.inc(count)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


class _Packed(msgspec.Struct, frozen=True):
    routing_keys: list[str]
    type: str
    body: msgspec.Raw


class _Entry(msgspec.Struct, frozen=True, omit_defaults=True):
    publications: list[_Packed]
    trace: dict[str, str] = {}  # the trace context of the commit (absent while tracing is off)


_entry_decoder = msgspec.json.Decoder(_Entry)


class BusEventChannel(EventChannel):
    """Events as bus messages: one `Delivery` to every recipient's user key, one `ServiceEvents` per kind."""

    def __init__(self, bus: MessageBus, metrics: EventMetrics) -> None:
        self._bus = bus
        self._metrics = metrics

    def render(self, events: Sequence[Event]) -> list[Publication]:
        publications: list[Publication] = []
        trace = tracing.inject() if tracing.enabled else _NO_HEADERS
        items = [item for event in events for item in delivery_items(event)]
        if items:
            keys = tuple(sorted({user_key(user_id) for item in items for user_id in item.user_ids}))
            publications.append(Publication(keys, DELIVERY, msgspec.json.encode(Delivery(items=items)), trace))
        by_kind: dict[str, list[service.AnyServiceEvent]] = {}
        for event in events:
            for fact in service_events(event):
                by_kind.setdefault(service.event_type(fact), []).append(fact)
        for kind, facts in by_kind.items():
            body = msgspec.json.encode(service.ServiceEvents(facts))
            publications.append(Publication((service.service_key(kind),), service.SERVICE_EVENTS_MESSAGE, body, trace))
        self._metrics.count(events)
        return publications

    def pack(self, publications: Sequence[Publication]) -> bytes:
        packed = [_Packed(list(p.routing_keys), p.type, msgspec.Raw(p.body)) for p in publications]
        trace = dict(publications[0].headers) if publications else {}
        return msgspec.json.encode(_Entry(packed, trace))

    def unpack(self, payload: bytes) -> list[Publication]:
        entry = _entry_decoder.decode(payload)
        return [Publication(tuple(p.routing_keys), p.type, bytes(p.body), entry.trace) for p in entry.publications]

    async def publish(self, publications: Sequence[Publication], ref: str | None) -> None:
        # The publication's time rides along, for the gateways' commit-to-socket latency: inline it is the
        # commit's, a relay's catch-up is later (a cross-process measure, so wall time on both ends).
        headers = published_now()
        # Different keys: no order to keep between them, so their confirms are awaited together.
        await asyncio.gather(
            *(
                self._bus.publish(p.routing_keys, _message(p, None if ref is None else f"{ref}.{index}", headers))
                for index, p in enumerate(publications)
            )
        )


_NO_HEADERS: Mapping[str, str] = {}


def _message(publication: Publication, message_id: str | None, headers: Mapping[str, str]) -> BusMessage:
    headers = {**publication.headers, **headers} if publication.headers else headers
    if message_id is None:
        return BusMessage(type=publication.type, body=publication.body, headers=headers)
    return BusMessage(type=publication.type, body=publication.body, message_id=message_id, headers=headers)


def service_events(event: Event) -> list[service.AnyServiceEvent]:
    """The service events (parlour/common/contracts/events.py) a domain event is, if any."""
    fact: service.AnyServiceEvent | None = None
    match event:
        case MessageSent(message=m, recipients=recipients, mentioned=mentioned):
            fact = service.MessageSent(
                chat_id=m.chat_id, seq=m.seq, message_id=m.id, sender_id=m.sender_id,
                member_ids=list(recipients), created_at=m.created_at, mentioned_user_ids=list(mentioned),
                chat_kind=event.chat_kind, chat_title=event.chat_title,
                preview=m.body[: service.PREVIEW_CHARACTERS],
                reply_to=m.reply_to.message_id if m.reply_to is not None else None,
            )  # fmt: skip
        case MessageEdited(message=m, recipients=recipients) if m.edited_at is not None:
            fact = service.MessageEdited(
                chat_id=m.chat_id, seq=m.seq, message_id=m.id, sender_id=m.sender_id,
                member_ids=list(recipients), edited_at=m.edited_at,
            )  # fmt: skip
        case MessageDeleted(message=m, recipients=recipients) if m.deleted_at is not None and m.deleted_by:
            fact = service.MessageDeleted(
                chat_id=m.chat_id, seq=m.seq, message_id=m.id, deleted_by=m.deleted_by,
                member_ids=list(recipients), deleted_at=m.deleted_at,
            )  # fmt: skip
        case MessageReacted(message=m, recipients=recipients):
            fact = service.MessageReacted(
                chat_id=m.chat_id, seq=m.seq, message_id=m.id, user_id=event.user_id, emoji=event.emoji,
                added=event.added, member_ids=list(recipients), reacted_at=event.at,
            )  # fmt: skip
        case MembershipChanged(chat_id=chat_id, version=version, member_ids=member_ids, removed_ids=removed):
            fact = service.ChatMembersChanged(
                chat_id=chat_id, version=version, member_ids=list(member_ids), removed_ids=list(removed)
            )
        case ReadCursorMoved(chat_id=chat_id, user_id=user_id, seq=seq):
            fact = service.ReadMoved(chat_id=chat_id, user_id=user_id, seq=seq)
    return [] if fact is None else [fact]


class KeyValueWriterRegistry(WriterRegistry):
    """The live outbox relays as a set with per-member expiry in the key-value store."""

    def __init__(self, kv: KeyValueStore, key: str = "messaging.relays") -> None:
        self._kv = kv
        self._key = key

    async def heartbeat(self, writer: str, ttl: float) -> None:
        await self._kv.add_member(self._key, writer, ttl)

    async def live(self) -> set[str]:
        return set(await self._kv.members(self._key))

    async def leave(self, writer: str) -> None:
        await self._kv.remove_member(self._key, writer)


_service_decoder = msgspec.json.Decoder(service.ServiceEvents)


class MembershipListener:
    """Drops this worker's cached members of a chat whose membership changed on any worker."""

    def __init__(self, cache: MembershipCache) -> None:
        self._cache = cache

    async def __call__(self, message: BusMessage) -> None:
        for event in _service_decoder.decode(message.body).events:
            if isinstance(event, service.ChatMembersChanged):
                self._cache.invalidate(event.chat_id, event.version)


class UserProjector:
    """Feeds the users projection from auth's events, a batch per transaction: `user.registered` adds a user,
    `user.deleted` forgets one (in the batch's order, so a sign-up and its deletion end deleted)."""

    def __init__(self, users: UserDirectory) -> None:
        self._users = users

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        for kind, run in itertools.groupby(messages, key=lambda message: message.type):
            if kind == USER_DELETED:
                await self._users.forget(*(_deleted_decoder.decode(message.body).user_id for message in run))
            else:
                events = [_registered_decoder.decode(message.body) for message in run]
                await self._users.record(*(ProjectedUser(e.user_id, e.username, e.display_name) for e in events))


_registered_decoder = msgspec.json.Decoder(UserRegistered)
_deleted_decoder = msgspec.json.Decoder(UserDeleted)
