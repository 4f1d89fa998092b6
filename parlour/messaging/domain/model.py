"""Chats, members and messages, and the rules they obey. Pure: no I/O, no framework."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from parlour.messaging.domain.errors import (
    DirectChatWithSelf,
    InvalidChatTitle,
    InvalidClientId,
    InvalidMessageBody,
    LastOwnerCannotLeave,
    MessageAlreadyDeleted,
    TooManyMembers,
    UnknownReaction,
)

BODY_MAX_CHARACTERS = 4_000
BODY_MAX_ENCODED_BYTES = 16 * 1024
TITLE_MAX_CHARACTERS = 128
GROUP_MAX_MEMBERS = 1_000
PREVIEW_CHARACTERS = 140
# The reactions a member may put on a message, in the order clients show them: the one declaration (the
# web client's copy, parlour/web/static/js/reactions.js, is checked against it by a test).
REACTIONS: tuple[str, ...] = ("👍", "❤️", "😂", "😮", "😢", "🎉")
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,64}")
# What JSON escaping costs per character beyond UTF-8, so the encoded size is known without encoding.
_JSON_ESCAPE_EXTRA = {'"': 1, "\\": 1, "\b": 1, "\f": 1, "\n": 1, "\r": 1, "\t": 1}


class ChatKind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"


class Role(StrEnum):
    """A member's role; owners outrank admins, who outrank members."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.OWNER: 3, Role.ADMIN: 2, Role.MEMBER: 1}


def check_body(body: str) -> str:
    """The body to store, unchanged; raises `InvalidMessageBody` unless it meets the rules."""
    if not body.strip() or len(body) > BODY_MAX_CHARACTERS or "\x00" in body:
        raise InvalidMessageBody()
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no database or client can store it
        raise InvalidMessageBody() from None
    if size + 5 * len(body) <= BODY_MAX_ENCODED_BYTES:  # within the limit even if every character escaped
        return body
    size += sum(_JSON_ESCAPE_EXTRA.get(char, 5 if char < " " else 0) for char in body)
    if size > BODY_MAX_ENCODED_BYTES:
        raise InvalidMessageBody()
    return body


def check_reaction(emoji: str) -> str:
    """One of `REACTIONS`, unchanged; raises `UnknownReaction` for anything else."""
    if emoji not in REACTIONS:
        raise UnknownReaction()
    return emoji


def normalize_title(raw: str) -> str:
    """A group title, trimmed and NFC-normalised; raises `InvalidChatTitle` unless it meets the rules."""
    title = unicodedata.normalize("NFC", raw.strip())
    if not 1 <= len(title) <= TITLE_MAX_CHARACTERS or not title.isprintable():
        raise InvalidChatTitle()
    return title


# `@username` where a username is as auth defines it (3-32 of a-z, 0-9, `_`, `.`, `-`), not inside a word.
_MENTION = re.compile(r"(?<![\w@])@([a-z0-9_.-]{3,32})(?![a-z0-9_-])", re.IGNORECASE)


def mentioned_usernames(body: str) -> frozenset[str]:
    """The usernames a body mentions with `@username`, lower-cased (usernames are case-insensitive)."""
    if "@" not in body:
        return frozenset()
    return frozenset(match.group(1).rstrip(".").lower() for match in _MENTION.finditer(body))


def check_client_id(client_id: str) -> str:
    """A client-chosen idempotency key; raises `InvalidClientId` unless it is printable ASCII, ≤ 64."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise InvalidClientId()
    return client_id


def direct_key(first: str, second: str) -> str:
    """The one key of the direct chat between two users, whoever asks first."""
    if first == second:
        raise DirectChatWithSelf()
    low, high = sorted((first, second))
    return f"{low}:{high}"


def group_member_ids(owner_id: str, member_ids: list[str]) -> list[str]:
    """The distinct members a new group starts with besides its owner, in the order given."""
    others = list(dict.fromkeys(user_id for user_id in member_ids if user_id != owner_id))
    if len(others) + 1 > GROUP_MAX_MEMBERS:
        raise TooManyMembers()
    return others


@dataclass(frozen=True, slots=True)
class Chat:
    """A conversation: direct (exactly two members, no title) or a group."""

    id: str
    kind: ChatKind
    title: str | None
    created_at: datetime
    last_activity_at: datetime
    last_seq: int = 0
    member_version: int = 0
    direct_key: str | None = None

    def peer_of(self, user_id: str) -> str | None:
        """In a direct chat, the other member."""
        if self.direct_key is None:
            return None
        low, high = self.direct_key.split(":")
        return high if low == user_id else low


@dataclass(frozen=True, slots=True)
class Member:
    """A user's membership of a chat: role and read cursor (`read_seq`, only moves forward)."""

    chat_id: str
    user_id: str
    role: Role
    joined_at: datetime
    read_seq: int = 0


@dataclass(frozen=True, slots=True)
class Members:
    """Who is in a chat at `version` (bumped by every membership change): the PIP's answer, with the
    chat's title as the same read found it (a rename does not bump `version`)."""

    chat_id: str
    kind: ChatKind
    version: int
    roles: Mapping[str, Role]
    title: str | None = None

    @classmethod
    def of(
        cls, chat_id: str, kind: ChatKind, version: int, roles: Mapping[str, Role], title: str | None = None
    ) -> Members:
        return cls(chat_id, kind, version, MappingProxyType(dict(roles)), title)

    def role_of(self, user_id: str) -> Role | None:
        """The user's role, or None for a non-member."""
        return self.roles.get(user_id)

    @property
    def user_ids(self) -> tuple[str, ...]:
        return tuple(self.roles)


@dataclass(frozen=True, slots=True)
class ChatView:
    """A chat as its members see it: the chat and every membership."""

    chat: Chat
    members: tuple[Member, ...]


def ensure_owner_remains(members: Members, user_id: str, new_role: Role | None) -> None:
    """Raise `LastOwnerCannotLeave` if `user_id` leaving (None) or taking `new_role` leaves no owner."""
    if members.role_of(user_id) is not Role.OWNER or new_role is Role.OWNER:
        return
    if sum(1 for role in members.roles.values() if role is Role.OWNER) <= 1:
        raise LastOwnerCannotLeave()


@dataclass(frozen=True, slots=True)
class Reaction:
    """One emoji on a message and the members who put it there, in the order they did."""

    emoji: str
    user_ids: tuple[str, ...]


def _sorted_reactions(reactions: dict[str, tuple[str, ...]]) -> tuple[Reaction, ...]:
    return tuple(Reaction(emoji, reactions[emoji]) for emoji in REACTIONS if reactions.get(emoji))


@dataclass(frozen=True, slots=True)
class Quote:
    """What a reply shows of the message it answers, as that message is now: who wrote it and how it
    starts (`preview`, empty once deleted)."""

    message_id: str
    seq: int
    sender_id: str
    preview: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a chat at position `seq`. A deleted message stays as a tombstone with its seq."""

    id: str
    chat_id: str
    seq: int
    sender_id: str
    client_id: str
    body: str
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    deleted_by: str | None = None
    reactions: tuple[Reaction, ...] = ()  # in `REACTIONS` order, none empty
    reply_to: Quote | None = None  # the message of the same chat this one answers

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def preview(self) -> str:
        """The start of the body, for chat lists and quotes."""
        return self.body[:PREVIEW_CHARACTERS]

    def quote(self) -> Quote:
        """How a reply to this message shows it."""
        return Quote(self.id, self.seq, self.sender_id, self.preview, self.deleted)

    def edit(self, body: str, now: datetime) -> Message:
        """The message with a new body; raises if deleted or the body breaks the rules."""
        if self.deleted:
            raise MessageAlreadyDeleted()
        return replace(self, body=check_body(body), edited_at=now)

    def delete(self, by: str, now: datetime) -> Message:
        """The tombstone: no body, same seq. Deleting twice keeps the first deletion."""
        if self.deleted:
            return self
        return replace(self, body="", deleted_at=now, deleted_by=by, reactions=())

    def react(self, user_id: str, emoji: str, *, add: bool) -> Message:
        """The message with `user_id`'s `emoji` on it (`add`) or off it; each user puts each emoji on once,
        so adding twice or removing what is not there changes nothing. Raises for an emoji not in
        `REACTIONS` or a deleted message."""
        check_reaction(emoji)
        if self.deleted:
            raise MessageAlreadyDeleted()
        reactions = {reaction.emoji: reaction.user_ids for reaction in self.reactions}
        users = reactions.get(emoji, ())
        if (user_id in users) == add:
            return self
        reactions[emoji] = (*users, user_id) if add else tuple(user for user in users if user != user_id)
        return replace(self, reactions=_sorted_reactions(reactions))
