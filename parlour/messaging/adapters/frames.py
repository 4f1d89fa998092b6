"""The server→client WebSocket frames messaging emits (docs/protocol.md, "Events from messaging").

Each frame is encoded once, here, with msgspec; the gateway writes it to sockets as it is. Events become
`DeliveryItem`s: the users a frame is for, and the one session when it answers a connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import msgspec

from parlour.common.contracts import DeliveryItem
from parlour.messaging.domain.messages import (
    ChatUpdated,
    CommandRejected,
    Event,
    MemberRemoved,
    MembershipChanged,
    MessageAcknowledged,
    MessageDeleted,
    MessageEdited,
    MessageReacted,
    MessageSent,
    ReadCursorMoved,
    Synced,
    UserTyped,
)
from parlour.messaging.domain.model import ChatView, Message


class _Frame(msgspec.Struct, tag_field="type", kw_only=True):
    pass


class ReactionOut(msgspec.Struct, kw_only=True):
    emoji: str
    user_ids: list[str]


class QuoteOut(msgspec.Struct, kw_only=True):
    message_id: str
    seq: int
    sender_id: str
    preview: str
    deleted: bool


class MessageNew(_Frame, tag="message.new"):
    chat_id: str
    seq: int
    message_id: str
    sender_id: str
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    reactions: list[ReactionOut]
    reply_to: QuoteOut | None


class MessageAck(_Frame, tag="message.ack"):
    client_id: str
    chat_id: str
    seq: int
    message_id: str
    created_at: datetime


class MessageRejected(_Frame, tag="message.rejected"):
    client_id: str
    code: str
    reason: str


class Error(_Frame, tag="error"):
    code: str
    reason: str
    command: str


class MessageEditedFrame(_Frame, tag="message.edited"):
    chat_id: str
    seq: int
    message_id: str
    sender_id: str
    body: str
    edited_at: datetime


class MessageDeletedFrame(_Frame, tag="message.deleted"):
    chat_id: str
    seq: int
    message_id: str
    deleted_by: str
    deleted_at: datetime


class MessageReactedFrame(_Frame, tag="message.reacted"):
    chat_id: str
    seq: int
    message_id: str
    user_id: str
    emoji: str
    added: bool
    reactions: list[ReactionOut]


class Typing(_Frame, tag="typing"):
    chat_id: str
    user_id: str


class Read(_Frame, tag="read"):
    chat_id: str
    user_id: str
    seq: int


class MemberOut(msgspec.Struct, kw_only=True):
    user_id: str
    role: str
    read_seq: int


class ChatFrame(_Frame, tag="chat"):
    chat_id: str
    kind: str
    title: str | None
    created_at: datetime
    last_seq: int
    members: list[MemberOut]


class ChatRemoved(_Frame, tag="chat.removed"):
    chat_id: str


class ResumeDone(_Frame, tag="resume.done"):
    chats: dict[str, int]
    truncated: list[str]
    removed: list[str]


def message_new(message: Message) -> MessageNew:
    """A message in its current state (a tombstone has an empty body and `deleted: true`)."""
    return MessageNew(
        chat_id=message.chat_id,
        seq=message.seq,
        message_id=message.id,
        sender_id=message.sender_id,
        body=message.body,
        created_at=message.created_at,
        edited_at=message.edited_at,
        deleted=message.deleted,
        reactions=reactions_out(message),
        reply_to=msgspec.convert(message.reply_to, QuoteOut, from_attributes=True) if message.reply_to else None,
    )


def reactions_out(message: Message) -> list[ReactionOut]:
    """A message's reactions as frames carry them: each emoji with its users, in the offered order."""
    return [ReactionOut(emoji=r.emoji, user_ids=list(r.user_ids)) for r in message.reactions]


def chat_frame(view: ChatView) -> ChatFrame:
    """The description of a chat: sent when it appears, changes, or a resume meets it first."""
    chat = view.chat
    members = [MemberOut(user_id=m.user_id, role=m.role.value, read_seq=m.read_seq) for m in view.members]
    return ChatFrame(
        chat_id=chat.id,
        kind=chat.kind.value,
        title=chat.title,
        created_at=chat.created_at,
        last_seq=chat.last_seq,
        members=members,
    )


def _item(user_ids: tuple[str, ...] | list[str], frame: _Frame, session_id: str | None = None) -> DeliveryItem:
    return DeliveryItem(user_ids=list(user_ids), frame=msgspec.Raw(msgspec.json.encode(frame)), session_id=session_id)


def delivery_items(event: Event) -> Iterator[DeliveryItem]:
    """The frames an event becomes, with whom they are for (none for internal events)."""
    match event:
        case MessageSent(message=message, recipients=recipients):
            yield _item(recipients, message_new(message))
        case MessageAcknowledged(message=message, session_id=session_id):
            yield _item([message.sender_id], _ack(message), session_id)
        case CommandRejected():
            yield _item([event.user_id], _rejection(event), event.session_id)
        case MessageEdited(message=message, recipients=recipients):
            yield _item(recipients, _edited(message))
        case MessageDeleted(message=message, recipients=recipients):
            yield _item(recipients, _deleted(message))
        case MessageReacted(message=m, recipients=recipients):
            frame = MessageReactedFrame(
                chat_id=m.chat_id, seq=m.seq, message_id=m.id, user_id=event.user_id, emoji=event.emoji,
                added=event.added, reactions=reactions_out(m),
            )  # fmt: skip
            yield _item(recipients, frame)
        case ReadCursorMoved(chat_id=chat_id, user_id=user_id, seq=seq, recipients=recipients):
            yield _item(recipients, Read(chat_id=chat_id, user_id=user_id, seq=seq))
        case UserTyped(chat_id=chat_id, user_id=user_id, recipients=recipients) if recipients:
            yield _item(recipients, Typing(chat_id=chat_id, user_id=user_id))
        case ChatUpdated(view=view, recipients=recipients):
            yield _item(recipients, chat_frame(view))
        case MemberRemoved(chat_id=chat_id, user_id=user_id):
            yield _item([user_id], ChatRemoved(chat_id=chat_id))
        case Synced():
            yield from _sync_items(event)
        case MembershipChanged() | UserTyped():
            return


def _ack(m: Message) -> MessageAck:
    return MessageAck(client_id=m.client_id, chat_id=m.chat_id, seq=m.seq, message_id=m.id, created_at=m.created_at)


def _edited(m: Message) -> MessageEditedFrame:
    assert m.edited_at is not None
    return MessageEditedFrame(
        chat_id=m.chat_id, seq=m.seq, message_id=m.id, sender_id=m.sender_id, body=m.body, edited_at=m.edited_at
    )


def _deleted(m: Message) -> MessageDeletedFrame:
    assert m.deleted_at is not None
    assert m.deleted_by is not None
    return MessageDeletedFrame(
        chat_id=m.chat_id, seq=m.seq, message_id=m.id, deleted_by=m.deleted_by, deleted_at=m.deleted_at
    )


def _rejection(event: CommandRejected) -> _Frame:
    if event.client_id is not None:
        return MessageRejected(client_id=event.client_id, code=event.code, reason=event.reason)
    return Error(code=event.code, reason=event.reason, command=event.command)


def _sync_items(event: Synced) -> Iterator[DeliveryItem]:
    user, session = [event.user_id], event.session_id
    for chat in event.chats:
        if chat.description is not None:
            yield _item(user, chat_frame(chat.description), session)
        for message in chat.messages:
            yield _item(user, message_new(message), session)
    done = ResumeDone(
        chats={chat.chat_id: chat.last_seq for chat in event.chats},
        truncated=[chat.chat_id for chat in event.chats if chat.truncated],
        removed=list(event.removed),
    )
    yield _item(user, done, session)
