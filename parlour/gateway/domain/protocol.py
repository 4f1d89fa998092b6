"""The WebSocket protocol's vocabulary: close codes, error codes, and what a client frame means.

The codec (adapters/codec.py) turns wire bytes into the `Inbound` values below; the session state machine
(session.py) turns them into frames and commands. docs/protocol.md is the contract for clients.

Close codes tell a client what to do next, and never look like a network failure (1006, no close frame):

* 4000-4099: your connection was cut, nothing is wrong with you: reconnect at once and `resume`.
* 4400-4499: a new pass (4401) or a fix on your side (4403) is needed before reconnecting.
* 4008 / 4029 / 1009: you broke the protocol or the rate limit; reconnect only after a back-off.
* 1012 / 1013: the server is restarting or a dependency is down: reconnect with back-off (elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class CloseCode(IntEnum):
    """Why the gateway closed a WebSocket."""

    NORMAL = 1000  # the client said goodbye
    MESSAGE_TOO_BIG = 1009  # repeated frames over the size limit
    INTERNAL_ERROR = 1011  # a bug: reconnect with back-off
    SERVICE_RESTART = 1012  # draining for a restart: reconnect (to another gateway) and resume
    TRY_AGAIN_LATER = 1013  # a dependency (key-value store, bus) is down: reconnect with back-off
    SLOW_CONSUMER = 4000  # the send buffer overflowed: reconnect and resume
    RESUME_FAILED = 4001  # the resume answer did not come in time or live frames overflowed meanwhile
    PING_TIMEOUT = 4002  # no pong to the server's ping in time
    RESYNC = 4003  # the gateway lost its bus connection, and maybe events with it: reconnect and resume
    SESSION_REVOKED = 4004  # the login was ended (logout, logout everywhere, token reuse): log in again
    POLICY_VIOLATION = 4008  # repeated malformed, binary or unknown frames
    RATE_LIMITED = 4029  # a flood: frames kept coming past the rate limit
    PASS_REJECTED = 4401  # missing, unknown, expired or reused pass: get a new pass
    ORIGIN_FORBIDDEN = 4403  # the page's origin is not allowed

    @property
    def reconnect(self) -> bool:
        """Whether a client should reconnect (and resume) without asking the user."""
        return self not in {CloseCode.ORIGIN_FORBIDDEN, CloseCode.POLICY_VIOLATION, CloseCode.MESSAGE_TOO_BIG}


class ErrorCode(StrEnum):
    """The `code` of an `error` frame: what was wrong with one client frame."""

    INVALID_JSON = "invalid_json"  # not UTF-8 JSON, or not an object
    UNKNOWN_TYPE = "unknown_type"  # `type` missing or not one the protocol knows
    INVALID_FRAME = "invalid_frame"  # a known type with missing or mistyped fields
    BINARY_UNSUPPORTED = "binary_unsupported"  # only text frames carry the protocol
    FRAME_TOO_LARGE = "frame_too_large"  # over the frame size limit
    RATE_LIMITED = "rate_limited"  # over the per-connection rate: the frame was dropped
    RESUME_IN_PROGRESS = "resume_in_progress"  # a second `resume` before `resume.done`
    UNAVAILABLE = "unavailable"  # the command could not be handed to messaging: send it again


# Control frames the gateway writes itself; every other server frame comes from messaging as it is.
HELLO = "hello"
PING = "ping"
PONG = "pong"
ERROR = "error"
BATCH = "batch"
RESUME_DONE = "resume.done"
MESSAGE_NEW = "message.new"
MESSAGE_PREFIX = "message."


class Destination(StrEnum):
    """The service a forwarded command is for."""

    MESSAGING = "messaging"  # on the command partition of its key
    PRESENCE = "presence"  # on presence's topic (`activity`)


@dataclass(frozen=True, slots=True)
class Close:
    """A close the session decided: code and reason, and whether buffered frames go out first."""

    code: CloseCode
    reason: str
    flush: bool = False


@dataclass(frozen=True, slots=True)
class Forward:
    """A client command for another service; `payload` is the frame re-encoded from its struct,
    identity-free.

    `partition_key` is the chat the command is about; None for a command routed by its sender.
    """

    type: str
    partition_key: str | None
    payload: bytes
    client_id: str | None = None
    destination: Destination = Destination.MESSAGING


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """`resume`: the client's last `seq` per chat it knows, and the command it becomes for messaging."""

    chats: Mapping[str, int]
    type: str = ""  # the contract's name for it, filled in by the codec
    payload: bytes = b"{}"


@dataclass(frozen=True, slots=True)
class ClientPing:
    """`ping`: answered with `pong` (carrying the same `id`, if any)."""

    id: str | int | None = None


@dataclass(frozen=True, slots=True)
class ClientPong:
    """`pong`: the answer to the server's `ping`."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A frame the codec could not accept, and why."""

    code: ErrorCode
    reason: str
    client_id: str | None = None


Inbound = Forward | ResumeRequest | ClientPing | ClientPong | Rejected


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What the gateway reads of a server frame from messaging: just enough to hold and de-duplicate it."""

    type: str
    chat_id: str | None = None
    seq: int | None = None
    chats: Mapping[str, int] = field(default_factory=dict)  # `resume.done` only: last seq included per chat

    @property
    def is_message(self) -> bool:
        return self.type.startswith(MESSAGE_PREFIX) and self.chat_id is not None
