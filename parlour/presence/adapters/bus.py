"""Presence on the bus: session events, `activity` commands and membership changes in; `presence` frames out.

In: `session.events` (`SessionEvents`, each gateway's openings and closings in order) and the `CommandBatch`es the
gateways publish on `PRESENCE_COMMANDS_KEY` (each command one of `TO_PRESENCE`, stamped with its user and
session), all on one queue; and messaging's `chat.members_changed` on another. A body that does not
decode is parked by the bus (msgspec's errors); a command inside a batch that does not decode is skipped
and logged (the gateway validated it already: only a bug or a newer gateway sends one).

Out: `presence` frames (docs/protocol.md, "presence"), each user's entry encoded once per flush and
shared by every frame naming them, as `Delivery` batches on the watchers' user keys, cut into bus
messages of at most `MAX_DELIVERY_BYTES`; and for the other services, one `PresenceChanges` per flush on
`PRESENCE_CHANGED` (parlour/common/contracts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

import msgspec
import structlog
from prometheus_client import CollectorRegistry, Counter

from parlour.common.bus import BusMessage, MessageBus
from parlour.common.bus.port import MalformedMessage
from parlour.common.contracts import (
    COMMANDS,
    DELIVERY,
    PRESENCE_CHANGED,
    SESSION_EVENTS,
    CommandBatch,
    Delivery,
    DeliveryItem,
    PresenceChanged,
    PresenceChanges,
    SessionEvents,
    published_now,
    user_key,
)
from parlour.common.contracts import commands as wire
from parlour.common.contracts import events as service
from parlour.presence.application.handlers import PresenceHandlers
from parlour.presence.application.ports import Activity, Closed, Frames, Opened, SessionChange, Snapshot
from parlour.presence.domain.model import Presence, Seen, Status

log = structlog.get_logger(__name__)

MEMBERS_CHANGED_KEY = service.service_key(service.ChatMembersChanged)
# One bus message carries frames up to about this size; a flush for many watchers becomes several.
MAX_DELIVERY_BYTES = 256 * 1024

_session_decoder = msgspec.json.Decoder(SessionEvents)
_batch_decoder = msgspec.json.Decoder(CommandBatch)
_command_decoder = msgspec.json.Decoder(wire.PresenceFrame)
_service_decoder = msgspec.json.Decoder(service.ServiceEvents)
_encoder = msgspec.json.Encoder()


class PresenceMetrics:
    """What presence counts: the session events and commands it applied, the frames it sent, and the
    sessions it closed because their gateway's lease lapsed (a gateway that died)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "parlour_presence_events",
            "Session events and commands applied by presence, by kind (session.opened, session.closed, activity).",
            ["kind"],
            registry=registry,
        )
        self.frames = Counter(
            "parlour_presence_frames",
            "`presence` frames published, by kind (snapshot after hello, coalesced update).",
            ["kind"],
            registry=registry,
        )
        self.lapsed_sessions = Counter(
            "parlour_presence_lapsed_sessions",
            "Sessions closed by the sweep because their gateway's lease lapsed.",
            registry=registry,
        )


class SessionConsumer:
    """One queue for what happens to sessions: its opening (`session.events`), its `activity` commands,
    its closing. A gateway hands a session's first `activity` over only once its opening is confirmed,
    so in one queue an `activity` never overtakes the opening of its session."""

    def __init__(self, handlers: PresenceHandlers, metrics: PresenceMetrics) -> None:
        self._handlers = handlers
        self._metrics = metrics

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        changes: list[SessionChange] = []
        for message in messages:
            if message.type == COMMANDS:
                changes.extend(self._activity(message))
                continue
            if message.type != SESSION_EVENTS:
                raise MalformedMessage(f"not session events nor a command batch: {message.type!r}")
            for event in _session_decoder.decode(message.body).events:
                change = Opened if event.kind == "opened" else Closed
                changes.append(change(event.user_id, event.session_id, event.gateway_id))
                self._metrics.events.labels(f"session.{event.kind}").inc()
        # The whole batch in one go (its reads and writes batched); the snapshots go out together after.
        await self._handlers.send_snapshots(await self._handlers.apply(changes))

    def _activity(self, message: BusMessage) -> list[SessionChange]:
        changes: list[SessionChange] = []
        for command in _batch_decoder.decode(message.body).commands:
            try:
                frame = _command_decoder.decode(command.command)
            except msgspec.DecodeError as error:
                log.warning("presence.command_skipped", user_id=command.user_id, error=str(error))
                continue
            changes.append(Activity(command.user_id, command.session_id, frame.state == "idle"))
            self._metrics.events.labels(wire.command_type(frame)).inc()
        return changes


class MembershipConsumer:
    """Messaging's `chat.members_changed`: the projection of who shares a chat with whom."""

    def __init__(self, handlers: PresenceHandlers) -> None:
        self._handlers = handlers

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        for message in messages:
            for event in _service_decoder.decode(message.body).events:
                if isinstance(event, service.ChatMembersChanged):
                    await self._handlers.members_changed(event.chat_id, event.version, event.member_ids)


class _Entry(msgspec.Struct):
    user_id: str
    status: Status
    last_seen: datetime | None


@lru_cache(maxsize=65_536)  # a snapshot names every contact: most of them alike since the last one
def entry(user_id: str, seen: Seen) -> bytes:
    """One user's object in a `presence` frame's `users`."""
    last_seen = None if seen.last_seen is None else datetime.fromtimestamp(seen.last_seen, UTC)
    return _encoder.encode(_Entry(user_id, seen.status, last_seen))


def presence_frame(entries: Sequence[bytes]) -> bytes:
    """A `presence` frame from encoded entries."""
    return b'{"type":"presence","users":[' + b",".join(entries) + b"]}"


class BusFrames(Frames):
    """`presence` frames as `Delivery` batches to the watchers' user keys."""

    def __init__(self, bus: MessageBus, metrics: PresenceMetrics, max_bytes: int = MAX_DELIVERY_BYTES) -> None:
        self._bus = bus
        self._metrics = metrics
        self._max_bytes = max_bytes

    async def snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        await self._publish_all(
            DeliveryItem(user_ids=[s.user_id], frame=msgspec.Raw(self._frame(s.seen)), session_id=s.session_id)
            for s in snapshots
        )
        self._metrics.frames.labels("snapshot").inc(len(snapshots))

    async def updates(self, updates: Sequence[tuple[Sequence[str], Mapping[str, Seen]]]) -> None:
        await self._publish_all(
            DeliveryItem(user_ids=list(watchers), frame=msgspec.Raw(self._frame(seen))) for watchers, seen in updates
        )
        self._metrics.frames.labels("update").inc(sum(len(watchers) for watchers, _ in updates))

    async def statuses(self, changes: Mapping[str, Presence]) -> None:
        items = [PresenceChanged(user_id=u, status=p.status.value, last_seen=p.last_seen) for u, p in changes.items()]
        body = _encoder.encode(PresenceChanges(changes=items))
        await self._bus.publish([PRESENCE_CHANGED], BusMessage(type=PRESENCE_CHANGED, body=body))

    @staticmethod
    def _frame(seen: Mapping[str, Seen]) -> bytes:
        return presence_frame([entry(user_id, view) for user_id, view in seen.items()])

    async def _publish_all(self, items: Iterable[DeliveryItem]) -> None:
        batch: list[DeliveryItem] = []
        size = 0
        for item in items:
            batch.append(item)
            size += len(item.frame) + 40 * len(item.user_ids)
            if size >= self._max_bytes:
                await self._publish(batch)
                batch, size = [], 0
        if batch:
            await self._publish(batch)

    async def _publish(self, items: list[DeliveryItem]) -> None:
        keys = sorted({user_key(user_id) for item in items for user_id in item.user_ids})
        body = _encoder.encode(Delivery(items=items))
        await self._bus.publish(keys, BusMessage(type=DELIVERY, body=body, headers=published_now()))
