"""The WebSocket codec: client frames decoded with msgspec into typed structs, and the bus messages.

Decoding is strict about the shape the gateway relies on (the `type`, and a bounded `chat_id` that becomes a
partition key) and leaves the meaning to messaging. A forwarded command's payload is re-encoded from the
struct, so only the declared fields travel: a frame that claims a `user_id` or `sender_id` loses it here,
and the identity messaging sees is the one the gateway stamps from the connection.

Server frames from messaging are never re-encoded: `peek_frame` reads just `type`, `chat_id`, `seq` (and a
`resume.done`'s `chats`) when the session needs them to hold or de-duplicate.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from parlour.common.contracts import ClientCommand, Delivery, SessionEvent
from parlour.gateway.domain.protocol import (
    ClientPing,
    ClientPong,
    ErrorCode,
    Forward,
    FrameInfo,
    Inbound,
    Rejected,
    ResumeRequest,
)

ChatId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Seq = Annotated[int, msgspec.Meta(ge=0)]
MAX_RESUME_CHATS = 10_000


class _Frame(msgspec.Struct, tag_field="type", kw_only=True):
    pass


class SendFrame(_Frame, tag="message.send"):
    chat_id: ChatId
    client_id: ClientId
    body: str


class EditFrame(_Frame, tag="message.edit"):
    chat_id: ChatId
    message_id: MessageId
    body: str


class DeleteFrame(_Frame, tag="message.delete"):
    chat_id: ChatId
    message_id: MessageId


class TypingFrame(_Frame, tag="typing"):
    chat_id: ChatId


class ReadFrame(_Frame, tag="read"):
    chat_id: ChatId
    seq: Seq


class ResumeFrame(_Frame, tag="resume"):
    chats: Annotated[dict[ChatId, Seq], msgspec.Meta(max_length=MAX_RESUME_CHATS)] = {}


class PingFrame(_Frame, tag="ping"):
    id: Annotated[str, msgspec.Meta(max_length=64)] | int | None = None


class PongFrame(_Frame, tag="pong"):
    pass


ClientFrame = SendFrame | EditFrame | DeleteFrame | TypingFrame | ReadFrame | ResumeFrame | PingFrame | PongFrame
ForwardedFrame = SendFrame | EditFrame | DeleteFrame | TypingFrame | ReadFrame
KNOWN_TYPES = frozenset({"message.send", "message.edit", "message.delete", "typing", "read", "resume", "ping", "pong"})


class _Envelope(msgspec.Struct):
    """What an invalid frame is read as, to say what was wrong with it."""

    type: Any = None
    client_id: Any = None


class _Peek(msgspec.Struct):
    type: str = ""
    chat_id: str | None = None
    seq: int | None = None
    chats: dict[str, int] | None = None


_client_decoder = msgspec.json.Decoder(ClientFrame)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_peek_decoder = msgspec.json.Decoder(_Peek)
_delivery_decoder = msgspec.json.Decoder(Delivery)
_encoder = msgspec.json.Encoder()


def decode_text(text: str, max_bytes: int) -> Inbound:
    """A text frame from the client as the session's input."""
    if len(text) > max_bytes or (len(text) * 4 > max_bytes and len(text.encode()) > max_bytes):
        return Rejected(ErrorCode.FRAME_TOO_LARGE, f"frames are limited to {max_bytes} bytes")
    try:
        frame = _client_decoder.decode(text)
    except msgspec.DecodeError as error:
        return _explain(text, error)
    return _inbound(frame)


def decode_binary(data: bytes, max_bytes: int) -> Rejected:
    """A binary frame: never part of the protocol."""
    if len(data) > max_bytes:
        return Rejected(ErrorCode.FRAME_TOO_LARGE, f"frames are limited to {max_bytes} bytes")
    return Rejected(ErrorCode.BINARY_UNSUPPORTED, "send JSON in text frames")


def _inbound(frame: ClientFrame) -> Inbound:
    if isinstance(frame, PingFrame):
        return ClientPing(frame.id)
    if isinstance(frame, PongFrame):
        return ClientPong()
    if isinstance(frame, ResumeFrame):
        return ResumeRequest(frame.chats)
    client_id = frame.client_id if isinstance(frame, SendFrame) else None
    return Forward(type=_type_name(frame), chat_id=frame.chat_id, payload=_encoder.encode(frame), client_id=client_id)


def _explain(text: str, error: msgspec.DecodeError) -> Rejected:
    try:
        envelope = _envelope_decoder.decode(text)
    except msgspec.DecodeError:
        return Rejected(ErrorCode.INVALID_JSON, "a frame is one JSON object")
    client_id = envelope.client_id if isinstance(envelope.client_id, str) and len(envelope.client_id) <= 64 else None
    if not isinstance(envelope.type, str) or envelope.type not in KNOWN_TYPES:
        return Rejected(ErrorCode.UNKNOWN_TYPE, "`type` must be one of: " + ", ".join(sorted(KNOWN_TYPES)), client_id)
    return Rejected(ErrorCode.INVALID_FRAME, f"{envelope.type}: {error}", client_id)


def peek_frame(frame: bytes) -> FrameInfo | None:
    """What the gateway needs to know of a server frame, or None if it is not a JSON object with a type."""
    try:
        peek = _peek_decoder.decode(frame)
    except msgspec.DecodeError:
        return None
    return FrameInfo(peek.type, peek.chat_id, peek.seq, peek.chats or {})


def decode_delivery(body: bytes) -> Delivery:
    """A `Delivery` batch from the bus (raises `msgspec.DecodeError` if malformed: the bus parks it)."""
    return _delivery_decoder.decode(body)


def encode_command(type_: str, user_id: str, session_id: str, payload: bytes) -> bytes:
    """A `ClientCommand` for the bus, stamped with the connection's identity."""
    return _encoder.encode(
        ClientCommand(type=type_, user_id=user_id, session_id=session_id, payload=msgspec.Raw(payload))
    )


def encode_session_event(user_id: str, session_id: str, gateway_id: str, at: float) -> bytes:
    """A `SessionEvent` for the bus."""
    return _encoder.encode(SessionEvent(user_id=user_id, session_id=session_id, gateway_id=gateway_id, at=at))


def _type_name(frame: _Frame) -> str:
    tag = type(frame).__struct_config__.tag
    assert isinstance(tag, str)
    return tag
