"""The WebSocket codec: client frames decoded with msgspec into the contract's structs, and the bus messages.

Decoding is strict about the shape the gateway relies on (the `type`, and bounded ids that become
partition keys) and leaves the meaning to messaging; the structs and their limits are the contract's
(parlour/common/contracts/commands.py), not this module's. A forwarded command is re-encoded from its
struct, so only the declared fields travel: a frame that claims a `user_id` or `sender_id` loses it here,
and the identity messaging sees is the one the gateway stamps from the connection.

A frame nested too deeply for the decoder is refused like any other invalid JSON, never with a traceback.
Server frames from messaging are never re-encoded: `frame_info` reads just `type`, `chat_id`, `seq` (and a
`resume.done`'s `chats`) when the session needs them to hold or de-duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from parlour.common.contracts import ClientCommand, CommandBatch, Delivery, SessionEvent, SessionEvents
from parlour.common.contracts.commands import (
    COMMAND_TYPES,
    AnyClientFrame,
    Ping,
    Pong,
    ReportActivity,
    Resume,
    client_id_of,
    command_type,
    routed_by_sender,
)
from parlour.common.contracts.limits import ID_MAX_CHARACTERS, FrameEnvelope, string_or_none
from parlour.gateway.domain.protocol import (
    ClientPing,
    ClientPong,
    Destination,
    ErrorCode,
    Forward,
    FrameInfo,
    Inbound,
    Rejected,
    ResumeRequest,
)

KNOWN_TYPES = frozenset(COMMAND_TYPES)


class _Peek(msgspec.Struct):
    type: str = ""
    chat_id: str | None = None
    seq: int | None = None
    chats: dict[str, int] | None = None


_client_decoder = msgspec.json.Decoder(AnyClientFrame)
_envelope_decoder = msgspec.json.Decoder(FrameEnvelope)
_peek_decoder = msgspec.json.Decoder(_Peek)
_delivery_decoder = msgspec.json.Decoder(Delivery)
_encoder = msgspec.json.Encoder()
_TOO_DEEP = Rejected(ErrorCode.INVALID_JSON, "a frame is one JSON object, nested at most a few levels deep")


def decode_text(text: str, max_bytes: int) -> Inbound:
    """A text frame from the client as the session's input."""
    if len(text) > max_bytes or (len(text) * 4 > max_bytes and len(text.encode()) > max_bytes):
        return Rejected(ErrorCode.FRAME_TOO_LARGE, f"frames are limited to {max_bytes} bytes")
    try:
        frame = _client_decoder.decode(text)
    except msgspec.DecodeError as error:
        return _explain(text, error)
    except RecursionError:
        return _TOO_DEEP
    return _inbound(frame)


def decode_binary(data: bytes, max_bytes: int) -> Rejected:
    """A binary frame: never part of the protocol."""
    if len(data) > max_bytes:
        return Rejected(ErrorCode.FRAME_TOO_LARGE, f"frames are limited to {max_bytes} bytes")
    return Rejected(ErrorCode.BINARY_UNSUPPORTED, "send JSON in text frames")


def _inbound(frame: AnyClientFrame) -> Inbound:
    if isinstance(frame, Ping):
        return ClientPing(frame.id)
    if isinstance(frame, Pong):
        return ClientPong()
    payload = _encoder.encode(frame)
    if isinstance(frame, Resume):
        return ResumeRequest(frame.chats, command_type(frame), payload)
    if isinstance(frame, ReportActivity):
        return Forward(command_type(frame), None, payload, destination=Destination.PRESENCE)
    key = None if routed_by_sender(frame) else frame.chat_id
    return Forward(command_type(frame), key, payload, client_id_of(frame))


def _explain(text: str, error: msgspec.DecodeError) -> Rejected:
    try:
        envelope = _envelope_decoder.decode(text)
    except msgspec.DecodeError:
        return Rejected(ErrorCode.INVALID_JSON, "a frame is one JSON object")
    except RecursionError:
        return _TOO_DEEP
    client_id, kind = string_or_none(envelope.client_id), string_or_none(envelope.type)
    named = client_id if client_id is not None and len(client_id) <= ID_MAX_CHARACTERS else None
    if kind is None or kind not in KNOWN_TYPES:
        return Rejected(ErrorCode.UNKNOWN_TYPE, "`type` must be one of: " + ", ".join(sorted(KNOWN_TYPES)), named)
    return Rejected(ErrorCode.INVALID_FRAME, f"{kind}: {error}", named)


def frame_info(frame: bytes) -> FrameInfo | None:
    """What the gateway needs to know of a server frame, or None if it is not a JSON object with a type."""
    try:
        peek = _peek_decoder.decode(frame)
    except (msgspec.DecodeError, RecursionError):
        return None
    return FrameInfo(peek.type, peek.chat_id, peek.seq, peek.chats or {})


def decode_delivery(body: bytes) -> Delivery:
    """A `Delivery` batch from the bus (raises `msgspec.DecodeError` if malformed: the bus parks it)."""
    return _delivery_decoder.decode(body)


def encode_commands(commands: Sequence[tuple[str, str, bytes]]) -> bytes:
    """A `CommandBatch` for the bus from `(user_id, session_id, payload)` triples, in order."""
    stamped = [
        ClientCommand(user_id=user_id, session_id=session_id, command=msgspec.Raw(payload))
        for user_id, session_id, payload in commands
    ]
    return _encoder.encode(CommandBatch(commands=stamped))


def encode_session_events(events: Sequence[SessionEvent]) -> bytes:
    """`SessionEvents` for the bus, in order."""
    return _encoder.encode(SessionEvents(events=list(events)))
