"""Notifications on the bus (in only; what it sends goes to the channels, not the bus).

Queues, each its own, so none waits behind another's backlog:

- `notifications.messages`: messaging's `message.sent`, `read.moved` and `chat.members_changed`, in
  one queue so a read or a membership change is applied in the order it happened relative to the sends
  around it. A batch's new messages are folded into the pending states in one transaction before the
  batch is acked (the bus acks after the handler returns).
- `notifications.presence`: presence's `presence.changed` (parlour/common/contracts).
- `notifications.users`: auth's `user.registered`, `user.renamed`, `user.deleted` (display names for the text).
- `notifications.deleted_users`: auth's `user.deleted`, for the channels (`DeletedUsersConsumer`).

A body that does not decode is parked by the bus (msgspec's errors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec
from prometheus_client import CollectorRegistry, Counter

from parlour.common.bus import BusMessage
from parlour.common.contracts import (
    USER_DELETED,
    USER_REGISTERED,
    USER_RENAMED,
    PresenceChanges,
    UserDeleted,
    UserRegistered,
    UserRenamed,
)
from parlour.common.contracts import events as service
from parlour.notifications.application.channels import ChannelHandlers
from parlour.notifications.application.handlers import NotificationHandlers
from parlour.notifications.domain.model import ChatKind
from parlour.notifications.domain.rule import NewMessage, Outcome

MESSAGE_KEYS = [
    service.service_key(service.MessageSent),
    service.service_key(service.ReadMoved),
    service.service_key(service.ChatMembersChanged),
]


class _MessageEvents(msgspec.Struct, frozen=True):
    """A `ServiceEvents` body of the messages queue's kinds (`MESSAGE_KEYS`), with `message.sent`'s members
    undecoded: another kind is a body the queue should never get, refused as malformed."""

    events: list[service.MessageSentMembersUndecoded | service.ReadMoved | service.ChatMembersChanged]


_message_events_decoder = msgspec.json.Decoder(_MessageEvents)
_members_decoder = msgspec.json.Decoder(tuple[str, ...])
# Chats whose last member list is kept decoded at most (the least recently used goes first).
MEMBER_LISTS = 4096
_presence_decoder = msgspec.json.Decoder(PresenceChanges)
# Auth's events on the users queue, by the message's type; each names a user and their display name (a
# deleted user's is "Deleted user").
_UserEvent = UserRegistered | UserRenamed | UserDeleted
_user_decoders: dict[str, msgspec.json.Decoder[_UserEvent]] = {
    USER_REGISTERED: msgspec.json.Decoder(UserRegistered),
    USER_RENAMED: msgspec.json.Decoder(UserRenamed),
    USER_DELETED: msgspec.json.Decoder(UserDeleted),
}
_deleted_decoder = msgspec.json.Decoder(UserDeleted)


class NotificationMetrics:
    """What notifications counts: the messages noted for members, and what became of each due state."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.noted = Counter(
            "parlour_notifications_noted",
            "New messages noted for a member to be told (one per message and member).",
            registry=registry,
        )
        self.decisions = Counter(
            "parlour_notifications_decisions",
            "Due pending states, by outcome (sent, looking, muted, left, read).",
            ["outcome"],
            registry=registry,
        )

    def count(self, outcomes: Mapping[Outcome, int]) -> None:
        """Count a round's outcomes."""
        for outcome, count in outcomes.items():
            self.decisions.labels(outcome.value).inc(count)


def new_message(event: service.MessageSent, member_ids: tuple[str, ...]) -> NewMessage:
    """The domain's view of a `message.sent` whose members are `member_ids`."""
    kind: ChatKind = "direct" if event.chat_kind == "direct" else "group"
    return NewMessage(
        chat_id=event.chat_id,
        seq=event.seq,
        sender_id=event.sender_id,
        member_ids=member_ids,
        mentioned_ids=frozenset(event.mentioned_user_ids),
        chat_kind=kind,
        chat_title=event.chat_title,
        preview=event.preview,
    )


class MemberLists:
    """Each chat's last member list, decoded once: every `message.sent` of a chat carries its members, the
    same list until the membership changes, and decoding a 1,000-member list was the consumer's largest
    cost (docs/benchmarks.md, "Notifications beside fan-out"). Comparing the JSON is much cheaper."""

    def __init__(self, capacity: int = MEMBER_LISTS) -> None:
        self._capacity = capacity
        self._lists: dict[str, tuple[msgspec.Raw, tuple[str, ...]]] = {}

    def of(self, chat_id: str, members: msgspec.Raw) -> tuple[str, ...]:
        """The member ids that `members` (a JSON list) holds."""
        known = self._lists.pop(chat_id, None)
        if known is None or known[0] != members:
            # A copy: the Raw points into the whole bus message, which must not stay alive for it.
            known = (members.copy(), _members_decoder.decode(members))
            while len(self._lists) >= self._capacity:
                del self._lists[next(iter(self._lists))]
        self._lists[chat_id] = known
        return known[1]


class MessagesConsumer:
    """`notifications.messages`: a batch's sends are noted at once; reads and memberships in order.

    The sends need not wait for the reads and membership changes between them: folding a send reads
    neither (the members travel in the event, and a read cursor is asked only when a notification is
    due), so a group whose members read as messages arrive still costs one fold per batch."""

    def __init__(self, handlers: NotificationHandlers, metrics: NotificationMetrics) -> None:
        self._handlers = handlers
        self._metrics = metrics
        self._members = MemberLists()

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        sends: list[NewMessage] = []
        reads: list[tuple[str, str, int]] = []
        for message in messages:
            for event in _message_events_decoder.decode(message.body).events:
                if isinstance(event, service.MessageSentMembersUndecoded):
                    sends.append(new_message(event, self._members.of(event.chat_id, event.member_ids)))
                elif isinstance(event, service.ReadMoved):
                    reads.append((event.chat_id, event.user_id, event.seq))
                elif isinstance(event, service.ChatMembersChanged):
                    # A read of a member who just joined comes after their joining: keep these in order.
                    await self._read(reads)
                    await self._handlers.members_changed(event.chat_id, event.version, event.member_ids)
        await self._read(reads)
        if sends:
            self._metrics.noted.inc(await self._handlers.messages_sent(sends))

    async def _read(self, reads: list[tuple[str, str, int]]) -> None:
        if reads:
            await self._handlers.reads_moved(reads)
            reads.clear()


class PresenceConsumer:
    """`notifications.presence`: the latest status of each user, a batch at once."""

    def __init__(self, handlers: NotificationHandlers) -> None:
        self._handlers = handlers

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        latest: dict[str, str] = {}
        for message in messages:
            for change in _presence_decoder.decode(message.body).changes:
                latest[change.user_id] = change.status
        await self._handlers.statuses_changed(latest)


def _user_decoder(kind: str) -> msgspec.json.Decoder[_UserEvent]:
    decoder = _user_decoders.get(kind)
    if decoder is None:
        raise msgspec.ValidationError(f"not an auth user event: {kind!r}")
    return decoder


class UsersConsumer:
    """`notifications.users`: display names (sign-ups, renames and deletions, the later of a user's in a
    batch wins), a batch per transaction. A message of another type is malformed (parked)."""

    def __init__(self, handlers: NotificationHandlers) -> None:
        self._handlers = handlers

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        events = [_user_decoder(message.type).decode(message.body) for message in messages]
        await self._handlers.users_named({event.user_id: event.display_name for event in events})


class DeletedUsersConsumer:
    """`notifications.deleted_users` (the channels' own queue): a deleted account's push subscriptions and
    webhooks go, a batch at once."""

    def __init__(self, channels: ChannelHandlers) -> None:
        self._channels = channels

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        await self._channels.forget_users({_deleted_decoder.decode(message.body).user_id for message in messages})
