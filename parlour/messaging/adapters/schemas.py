"""The JSON shapes of the messaging REST API (pydantic, at the edge only)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field

from parlour.common.ids import ID_PATTERN
from parlour.messaging.application.ports import ChatCursor, ChatSummary
from parlour.messaging.domain.errors import InvalidCursor
from parlour.messaging.domain.model import BODY_MAX_CHARACTERS, TITLE_MAX_CHARACTERS, ChatView, Message, Role

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
# Generous bounds at the edge (parsing cost); the domain's rules then answer with their own codes. The
# schema states the domain's rules (messaging/domain/model.py), so the OpenAPI is as strict as the server.
Body = Annotated[str, Field(max_length=20_000, json_schema_extra={"minLength": 1, "maxLength": BODY_MAX_CHARACTERS})]
Title = Annotated[str, Field(max_length=512, json_schema_extra={"minLength": 1, "maxLength": TITLE_MAX_CHARACTERS})]
ClientId = Annotated[str, Field(max_length=128, json_schema_extra={"maxLength": 64, "pattern": r"^[\x21-\x7e]{1,64}$"})]


class DirectChatRequest(BaseModel):
    kind: Literal["direct"]
    user_id: Id


class GroupChatRequest(BaseModel):
    kind: Literal["group"]
    title: Title
    member_ids: list[Id] = Field(default_factory=list, max_length=1_000)


CreateChatRequest = Annotated[DirectChatRequest | GroupChatRequest, Field(discriminator="kind")]


class RenameRequest(BaseModel):
    title: Title


class AddMemberRequest(BaseModel):
    user_id: Id
    role: Role = Role.MEMBER


class ChangeRoleRequest(BaseModel):
    role: Role


class SendRequest(BaseModel):
    client_id: ClientId | None = Field(
        default=None, description="Idempotency key: repeating it returns the original message. Generated if absent."
    )
    body: Body
    reply_to: Id | None = Field(default=None, description="The id of the message of this chat this one replies to.")


class EditRequest(BaseModel):
    body: Body


def _a_json_number(value: object) -> object:
    # JSON Schema's `integer` is any integral number (`7.0` too), never `false` or `"7"`.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a sequence number is a JSON number")
    return value


class ReadRequest(BaseModel):
    seq: Annotated[int, BeforeValidator(_a_json_number)] = Field(ge=0, le=2**53)


class MemberOut(BaseModel):
    user_id: str
    role: Role
    read_seq: int
    joined_at: datetime


class ChatOut(BaseModel):
    id: str
    kind: str
    title: str | None
    created_at: datetime
    last_activity_at: datetime
    last_seq: int
    members: list[MemberOut]

    @classmethod
    def of(cls, view: ChatView) -> ChatOut:
        chat = view.chat
        return cls(
            id=chat.id,
            kind=chat.kind.value,
            title=chat.title,
            created_at=chat.created_at,
            last_activity_at=chat.last_activity_at,
            last_seq=chat.last_seq,
            members=[
                MemberOut(user_id=m.user_id, role=m.role, read_seq=m.read_seq, joined_at=m.joined_at)
                for m in view.members
            ],
        )


class ReactionOut(BaseModel):
    emoji: str
    user_ids: list[str] = Field(description="Who put this emoji on the message, in the order they did.")


class QuoteOut(BaseModel):
    message_id: str
    seq: int
    sender_id: str
    preview: str = Field(description="The start of the replied message's body as it is now; empty once deleted.")
    deleted: bool


class MessageOut(BaseModel):
    id: str
    chat_id: str
    seq: int
    sender_id: str
    client_id: str
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    reactions: list[ReactionOut] = Field(description="Each emoji on the message with its users; none if deleted.")
    reply_to: QuoteOut | None = Field(description="The message of this chat this one replies to, as it is now.")

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            id=message.id,
            chat_id=message.chat_id,
            seq=message.seq,
            sender_id=message.sender_id,
            client_id=message.client_id,
            body=message.body,
            created_at=message.created_at,
            edited_at=message.edited_at,
            deleted=message.deleted,
            reactions=[ReactionOut(emoji=r.emoji, user_ids=list(r.user_ids)) for r in message.reactions],
            reply_to=QuoteOut.model_validate(message.reply_to, from_attributes=True) if message.reply_to else None,
        )


class MessagePreview(BaseModel):
    id: str
    seq: int
    sender_id: str
    preview: str
    created_at: datetime
    deleted: bool


class ChatSummaryOut(BaseModel):
    id: str
    kind: str
    title: str | None
    peer_id: str | None = Field(description="In a direct chat, the other member.")
    role: Role
    last_seq: int
    read_seq: int
    unread_count: int
    last_activity_at: datetime
    last_message: MessagePreview | None

    @classmethod
    def of(cls, summary: ChatSummary, user_id: str) -> ChatSummaryOut:
        chat, last = summary.chat, summary.last_message
        preview = None
        if last is not None:
            preview = MessagePreview(
                id=last.id,
                seq=last.seq,
                sender_id=last.sender_id,
                preview=last.preview,
                created_at=last.created_at,
                deleted=last.deleted,
            )
        return cls(
            id=chat.id,
            kind=chat.kind.value,
            title=chat.title,
            peer_id=chat.peer_of(user_id),
            role=summary.role,
            last_seq=chat.last_seq,
            read_seq=summary.read_seq,
            unread_count=summary.unread,
            last_activity_at=chat.last_activity_at,
            last_message=preview,
        )


class ChatListOut(BaseModel):
    items: list[ChatSummaryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class HistoryOut(BaseModel):
    items: list[MessageOut]
    has_more: bool = Field(description="More messages lie beyond this page, in the direction it was read.")


def encode_cursor(cursor: ChatCursor) -> str:
    """An opaque cursor for the chat list."""
    raw = json.dumps([cursor.last_activity_at.isoformat(), cursor.chat_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> ChatCursor:
    """The cursor `encode_cursor` made; `InvalidCursor` for anything else."""
    try:
        at, chat_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        moment = datetime.fromisoformat(at)
    except (ValueError, TypeError, binascii.Error) as error:
        raise InvalidCursor() from error
    if moment.tzinfo is None or not isinstance(chat_id, str):
        raise InvalidCursor()
    return ChatCursor(moment, chat_id)
