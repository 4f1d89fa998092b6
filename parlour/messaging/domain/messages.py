"""Commands (imperative: what a user asks for) and events (past tense: what happened, and for whom).

Commands that can arrive over a WebSocket carry the `session_id` of the connection that sent them, so
their answer (an ack, a rejection, a sync) goes to that connection only; over REST it is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from parlour.messaging.domain.model import ChatView, Message, Role


@dataclass(frozen=True, slots=True)
class SendMessage:
    actor: str
    chat_id: str
    client_id: str
    body: str
    session_id: str | None = None
    reply_to: str | None = None  # the id of the message of the same chat this one answers


@dataclass(frozen=True, slots=True)
class EditMessage:
    actor: str
    chat_id: str
    message_id: str
    body: str
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    actor: str
    chat_id: str
    message_id: str
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReactToMessage:
    """Put `emoji` on a message (`add`), or take one's own off it."""

    actor: str
    chat_id: str
    message_id: str
    emoji: str
    add: bool = True
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class MarkRead:
    actor: str
    chat_id: str
    seq: int
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class RelayTyping:
    actor: str
    chat_id: str
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Sync:
    """Send one connection everything it missed: `chats` maps chat id to the last seq it has."""

    actor: str
    session_id: str
    chats: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RejectCommand:
    """Answer a command that could not be understood (the bus adapter found it malformed)."""

    actor: str
    session_id: str
    command: str
    code: str
    reason: str
    client_id: str | None = None


ChatCommand = SendMessage | EditMessage | DeleteMessage | ReactToMessage | MarkRead | RelayTyping | Sync | RejectCommand


@dataclass(frozen=True, slots=True)
class OnBehalf:
    """How to ask auth about a user id as the caller: with their bearer token."""

    token: str


@dataclass(frozen=True, slots=True)
class CreateDirectChat:
    actor: str
    peer_id: str
    caller: OnBehalf | None = None


@dataclass(frozen=True, slots=True)
class CreateGroup:
    actor: str
    title: str
    member_ids: list[str]
    caller: OnBehalf | None = None


@dataclass(frozen=True, slots=True)
class AddMember:
    actor: str
    chat_id: str
    user_id: str
    role: Role = Role.MEMBER
    caller: OnBehalf | None = None


@dataclass(frozen=True, slots=True)
class RemoveMember:
    actor: str
    chat_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class ChangeRole:
    actor: str
    chat_id: str
    user_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class RenameChat:
    actor: str
    chat_id: str
    title: str


# Events. `recipients` are user ids; `session_id` narrows an answer to one connection.


@dataclass(frozen=True, slots=True)
class MessageSent:
    message: Message
    recipients: tuple[str, ...]
    mentioned: tuple[str, ...] = ()  # members named with `@username` in the body
    chat_kind: str = "group"  # for the services that tell people about it (notifications)
    chat_title: str | None = None


@dataclass(frozen=True, slots=True)
class MessageAcknowledged:
    message: Message
    session_id: str


@dataclass(frozen=True, slots=True)
class CommandRejected:
    user_id: str
    session_id: str
    command: str
    code: str
    reason: str
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class MessageEdited:
    message: Message
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    message: Message  # the tombstone, with `deleted_by`
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MessageReacted:
    """`user_id` put `emoji` on `message` (`added`) or took it off; `message` carries every reaction now."""

    message: Message
    user_id: str
    emoji: str
    added: bool
    at: datetime
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReadCursorMoved:
    chat_id: str
    user_id: str
    seq: int
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserTyped:
    chat_id: str
    user_id: str
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChatUpdated:
    """A chat was created, renamed, or its members changed: its new description, for its members."""

    view: ChatView
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    """A user left or was removed: told to that user, whose clients drop the chat."""

    chat_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class MembershipChanged:
    """A chat was created or its members changed: every messaging worker drops its cached members of the
    chat (the PIP cache), and other services learn who is in it now."""

    chat_id: str
    version: int
    member_ids: tuple[str, ...]
    removed_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SyncedChat:
    """One chat of a sync answer: its description when the client did not list it, then what it missed."""

    chat_id: str
    messages: tuple[Message, ...]
    last_seq: int
    truncated: bool
    description: ChatView | None = None


@dataclass(frozen=True, slots=True)
class Synced:
    user_id: str
    session_id: str
    chats: tuple[SyncedChat, ...]
    removed: tuple[str, ...]


Event = (
    MessageSent
    | MessageAcknowledged
    | CommandRejected
    | MessageEdited
    | MessageDeleted
    | MessageReacted
    | ReadCursorMoved
    | UserTyped
    | ChatUpdated
    | MemberRemoved
    | MembershipChanged
    | Synced
)
