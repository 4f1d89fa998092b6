"""Every command a client sends over the WebSocket, declared once (docs/protocol.md, "Client frames").

Each command is a msgspec struct tagged by its wire `type`, with the limits the gateway enforces before
anything leaves the connection (ids of 1-64 characters, non-negative seqs, a bounded resume). Everything
else is derived from this module: the gateway's codec decodes `ClientFrame` and knows `COMMAND_TYPES`; a
command whose `route` is not `Route.GATEWAY` is forwarded to messaging inside a `ClientCommand`, on the
partition `partition_key` names; messaging's bus adapter maps each forwarded type to its use case, and a
test checks that every forwarded type has one. Adding a command is one struct here, plus its handler.

Meaning (who may, what a body may hold) is messaging's business: a struct only checks the shape.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, ClassVar, Literal

import msgspec

from parlour.common.contracts.limits import (
    ID_MAX_CHARACTERS,
    MAX_RESUME_CHATS,
    ClientId,
    Emoji,
    Id,
    Seq,
    struct_tag,
)


class Route(Enum):
    """Where a command goes once the gateway accepted it."""

    CHAT = "chat"  # to messaging, on the partition of its chat: one worker at a time owns a chat
    USER = "user"  # to messaging, on the partition of the sending user (a resume spans chats)
    GATEWAY = "gateway"  # answered by the gateway itself
    PRESENCE = "presence"  # to the presence service, keyed by the sending user


class ClientFrame(msgspec.Struct, tag_field="type", kw_only=True, frozen=True):
    """A frame a client sends; `type` selects the struct."""

    route: ClassVar[Route] = Route.CHAT


# `omit_defaults`: a send that replies to nothing is encoded as it was before replies (the hot path's bytes).
class SendMessage(ClientFrame, tag="message.send", frozen=True, omit_defaults=True):
    """Send `body` to the chat, as a reply to the message `reply_to` of the same chat if given;
    `client_id` makes a retry find the original instead of sending twice."""

    chat_id: Id
    client_id: ClientId
    body: str
    reply_to: Id | None = None


class EditMessage(ClientFrame, tag="message.edit", frozen=True):
    """Replace the body of one's own message."""

    chat_id: Id
    message_id: Id
    body: str


class DeleteMessage(ClientFrame, tag="message.delete", frozen=True):
    """Turn a message into a tombstone."""

    chat_id: Id
    message_id: Id


class ReactToMessage(ClientFrame, tag="message.react", frozen=True):
    """Put a reaction on a message, or (`remove`) take one's own off it."""

    chat_id: Id
    message_id: Id
    emoji: Emoji
    remove: bool = False


class StartTyping(ClientFrame, tag="typing", frozen=True):
    """Tell the chat's other members that one is typing (relayed, never stored)."""

    chat_id: Id


class MarkRead(ClientFrame, tag="read", frozen=True):
    """Move one's read cursor in the chat forward to `seq`."""

    chat_id: Id
    seq: Seq


class Resume(ClientFrame, tag="resume", frozen=True):
    """Ask for everything missed since the last `seq` known per chat (answered with `resume.done`)."""

    route: ClassVar[Route] = Route.USER
    chats: Annotated[dict[Id, Seq], msgspec.Meta(max_length=MAX_RESUME_CHATS)] = {}


class ReportActivity(ClientFrame, tag="activity", frozen=True):
    """Say whether the person at this connection is active or idle (a session starts active)."""

    route: ClassVar[Route] = Route.PRESENCE
    state: Literal["active", "idle"]


class Ping(ClientFrame, tag="ping", frozen=True):
    """Ask the gateway for a `pong` carrying the same `id`."""

    route: ClassVar[Route] = Route.GATEWAY
    id: Annotated[str, msgspec.Meta(max_length=ID_MAX_CHARACTERS)] | int | None = None


class Pong(ClientFrame, tag="pong", frozen=True):
    """The answer to the gateway's `ping`."""

    route: ClassVar[Route] = Route.GATEWAY


CLIENT_FRAMES: tuple[type[ClientFrame], ...] = (
    SendMessage,
    EditMessage,
    DeleteMessage,
    ReactToMessage,
    StartTyping,
    MarkRead,
    Resume,
    ReportActivity,
    Ping,
    Pong,
)
# What reaches messaging (`FORWARDED`), and what reaches presence (`TO_PRESENCE`).
ForwardedFrame = SendMessage | EditMessage | DeleteMessage | ReactToMessage | StartTyping | MarkRead | Resume
AnyClientFrame = ForwardedFrame | ReportActivity | Ping | Pong
PresenceFrame = ReportActivity
MESSAGING_ROUTES = frozenset({Route.CHAT, Route.USER})


def command_type(frame: type[ClientFrame] | ClientFrame) -> str:
    """The wire `type` of a command struct (its msgspec tag)."""
    return struct_tag(frame if isinstance(frame, type) else type(frame))


COMMAND_TYPES: dict[str, type[ClientFrame]] = {command_type(frame): frame for frame in CLIENT_FRAMES}
FORWARDED: tuple[type[ClientFrame], ...] = tuple(frame for frame in CLIENT_FRAMES if frame.route in MESSAGING_ROUTES)
TO_PRESENCE: tuple[type[ClientFrame], ...] = tuple(frame for frame in CLIENT_FRAMES if frame.route is Route.PRESENCE)


def routed_by_sender(frame: type[ClientFrame] | ClientFrame) -> bool:
    """Whether a command's partition key is its sender (a user-wide command), not a chat."""
    return frame.route in {Route.USER, Route.PRESENCE}


def partition_key(frame: ClientFrame, user_id: str) -> str:
    """The bus partition key of a forwarded command: its chat, or the sender for a user-wide command."""
    if routed_by_sender(frame):
        return user_id
    chat_id = getattr(frame, "chat_id", None)
    assert isinstance(chat_id, str), f"{command_type(frame)} is routed by chat but has no chat_id"
    return chat_id


def client_id_of(frame: ClientFrame) -> str | None:
    """The `client_id` a rejection of this command must name, if it carries one."""
    return frame.client_id if isinstance(frame, SendMessage) else None
