"""Service events: what messaging tells any other service, on its own topic (docs/architecture.md).

Gateways get pre-rendered client frames on users' keys (`Delivery`); these are for services (presence,
notifications, anything an operator adds). Each kind travels under the routing key `service_key(kind)`,
`messaging.<type>`, so a consumer binds to the kinds it wants (`messaging.#` for all). One bus message
carries every event of one kind that one commit produced, as `ServiceEvents`, in commit order.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from parlour.common.contracts.limits import struct_tag


class ServiceEvent(msgspec.Struct, tag_field="type", kw_only=True, frozen=True):
    """Something that happened in messaging, past tense; `type` selects the struct."""


# How much of a message's body `MessageSent.preview` carries (a notification shows no more).
PREVIEW_CHARACTERS = 200


class MessageSent(ServiceEvent, tag="message.sent", frozen=True):
    """A new message was committed at `seq` of its chat (never for a repeated `client_id`).

    `chat_kind`, `chat_title` (None for a direct chat) and `preview` (the body's first
    `PREVIEW_CHARACTERS` characters) are what a notification's text needs; `reply_to` the id of the
    message of the chat it replies to. Their defaults read an event published before they existed."""

    chat_id: str
    seq: int
    message_id: str
    sender_id: str
    member_ids: list[str]
    created_at: datetime
    mentioned_user_ids: list[str]
    chat_kind: str = "group"
    chat_title: str | None = None
    preview: str = ""
    reply_to: str | None = None


class MessageSentMembersUndecoded(MessageSent, tag="message.sent", frozen=True):
    """A `message.sent` read with its `member_ids` left as JSON: for a consumer that decodes a chat's member
    list only when it differs from the last one it saw (in a large group the list is most of the event,
    and the same from one message to the next)."""

    member_ids: msgspec.Raw  # type: ignore[assignment]


class MessageEdited(ServiceEvent, tag="message.edited", frozen=True):
    chat_id: str
    seq: int
    message_id: str
    sender_id: str
    member_ids: list[str]
    edited_at: datetime


class MessageDeleted(ServiceEvent, tag="message.deleted", frozen=True):
    chat_id: str
    seq: int
    message_id: str
    deleted_by: str
    member_ids: list[str]
    deleted_at: datetime


class MessageReacted(ServiceEvent, tag="message.reacted", frozen=True):
    """`user_id` put `emoji` on a message (`added`) or took it off (also for a repeat that changed nothing)."""

    chat_id: str
    seq: int
    message_id: str
    user_id: str
    emoji: str
    added: bool
    member_ids: list[str]
    reacted_at: datetime


class ChatMembersChanged(ServiceEvent, tag="chat.members_changed", frozen=True):
    """A chat was created or its membership changed: its members now, at membership `version`."""

    chat_id: str
    version: int
    member_ids: list[str]
    removed_ids: list[str]


class ReadMoved(ServiceEvent, tag="read.moved", frozen=True):
    """A member's read cursor is now at `seq`."""

    chat_id: str
    user_id: str
    seq: int


AnyServiceEvent = MessageSent | MessageEdited | MessageDeleted | MessageReacted | ChatMembersChanged | ReadMoved
SERVICE_EVENTS: tuple[type[ServiceEvent], ...] = (
    MessageSent,
    MessageEdited,
    MessageDeleted,
    MessageReacted,
    ChatMembersChanged,
    ReadMoved,
)


class ServiceEvents(msgspec.Struct, frozen=True):
    """The events of one kind from one commit, in order (the body of one bus message)."""

    events: list[AnyServiceEvent]


def event_type(event: type[ServiceEvent] | ServiceEvent) -> str:
    """The wire `type` of an event struct (its msgspec tag)."""
    return struct_tag(event if isinstance(event, type) else type(event))


def service_key(kind: type[ServiceEvent] | ServiceEvent | str) -> str:
    """The routing key of a kind of service event: `messaging.message.sent`, ..."""
    return f"messaging.{kind if isinstance(kind, str) else event_type(kind)}"


SERVICE_EVENTS_MESSAGE = "service.events"
ALL_SERVICE_EVENTS_KEY = "messaging.#"
