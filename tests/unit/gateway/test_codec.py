"""The WebSocket codec: client frames to session inputs, server frames described, bus messages."""

from __future__ import annotations

import json

import msgspec
import pytest

from parlour.common.contracts import ClientCommand, SessionEvent
from parlour.gateway.adapters.codec import (
    decode_binary,
    decode_delivery,
    decode_text,
    encode_command,
    encode_session_event,
    peek_frame,
)
from parlour.gateway.domain.protocol import (
    ClientPing,
    ClientPong,
    ErrorCode,
    Forward,
    FrameInfo,
    Rejected,
    ResumeRequest,
)

LIMIT = 64 * 1024


def decode(frame: object) -> object:
    return decode_text(json.dumps(frame), LIMIT)


def test_message_send_is_forwarded_without_identity_claims() -> None:
    frame = {"type": "message.send", "chat_id": "c1", "client_id": "k1", "body": "hi", "sender_id": "mallory"}
    result = decode({**frame, "user_id": "mallory", "session_id": "x"})
    assert isinstance(result, Forward)
    assert (result.type, result.chat_id, result.client_id) == ("message.send", "c1", "k1")
    assert json.loads(result.payload) == {"type": "message.send", "chat_id": "c1", "client_id": "k1", "body": "hi"}


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "message.edit", "chat_id": "c1", "message_id": "m1", "body": "new"},
        {"type": "message.delete", "chat_id": "c1", "message_id": "m1"},
        {"type": "typing", "chat_id": "c1"},
        {"type": "read", "chat_id": "c1", "seq": 5},
    ],
)
def test_every_chat_command_is_forwarded_with_exactly_its_fields(frame: dict[str, object]) -> None:
    result = decode(frame)
    assert isinstance(result, Forward)
    assert result.type == frame["type"]
    assert result.chat_id == "c1"
    assert json.loads(result.payload) == frame


def test_control_frames_decode_to_their_inputs() -> None:
    assert decode({"type": "ping"}) == ClientPing()
    assert decode({"type": "ping", "id": "abc"}) == ClientPing("abc")
    assert decode({"type": "pong"}) == ClientPong()
    assert decode({"type": "resume", "chats": {"c1": 3}}) == ResumeRequest({"c1": 3})
    assert decode({"type": "resume"}) == ResumeRequest({})


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", ErrorCode.INVALID_JSON),
        ("[1, 2]", ErrorCode.INVALID_JSON),
        ('"message.send"', ErrorCode.INVALID_JSON),
        ("{}", ErrorCode.UNKNOWN_TYPE),
        ('{"type": "message.steal"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": 5}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "read", "chat_id": "c1"}', ErrorCode.INVALID_FRAME),
        ('{"type": "read", "chat_id": "c1", "seq": -1}', ErrorCode.INVALID_FRAME),
        ('{"type": "typing", "chat_id": ""}', ErrorCode.INVALID_FRAME),
        ('{"type": "typing", "chat_id": "' + "c" * 65 + '"}', ErrorCode.INVALID_FRAME),
        ('{"type": "resume", "chats": {"c1": "x"}}', ErrorCode.INVALID_FRAME),
    ],
)
def test_bad_frames_are_rejected_with_a_code_that_says_why(text: str, code: ErrorCode) -> None:
    result = decode_text(text, LIMIT)
    assert isinstance(result, Rejected)
    assert result.code is code


def test_a_rejected_send_keeps_its_client_id_for_the_error() -> None:
    result = decode({"type": "message.send", "chat_id": "c1", "client_id": "k7"})
    assert isinstance(result, Rejected)
    assert (result.code, result.client_id) == (ErrorCode.INVALID_FRAME, "k7")


def test_frames_over_the_limit_are_rejected_without_decoding() -> None:
    body = "é" * 40_000  # 80,000 bytes in UTF-8, 40,000 characters
    result = decode({"type": "message.send", "chat_id": "c1", "client_id": "k", "body": body})
    assert isinstance(result, Rejected)
    assert result.code is ErrorCode.FRAME_TOO_LARGE
    assert isinstance(decode_text("x" * (LIMIT + 1), LIMIT), Rejected)


def test_binary_frames_are_not_part_of_the_protocol() -> None:
    assert decode_binary(b"{}", LIMIT).code is ErrorCode.BINARY_UNSUPPORTED
    assert decode_binary(b"x" * (LIMIT + 1), LIMIT).code is ErrorCode.FRAME_TOO_LARGE


def test_peek_frame_reads_only_what_hold_and_dedup_need() -> None:
    frame = b'{"type":"message.new","chat_id":"c1","seq":9,"body":"x","sender_id":"u","extra":{"a":[1]}}'
    assert peek_frame(frame) == FrameInfo("message.new", "c1", 9)
    done = b'{"type":"resume.done","chats":{"c1":9,"c2":0},"truncated":["c3"]}'
    assert peek_frame(done) == FrameInfo("resume.done", chats={"c1": 9, "c2": 0})
    assert peek_frame(b"not json") is None


def test_commands_are_stamped_and_carry_the_payload_as_raw_json() -> None:
    body = encode_command("message.send", "alice", "s1", b'{"type":"message.send","body":"hi"}')
    command = msgspec.json.decode(body, type=ClientCommand)
    assert (command.type, command.user_id, command.session_id) == ("message.send", "alice", "s1")
    assert json.loads(bytes(command.payload)) == {"type": "message.send", "body": "hi"}


def test_deliveries_and_session_events_round_trip() -> None:
    items = b'{"user_ids":["a","b"],"frame":{"type":"typing"}},{"user_ids":["a"],"frame":{},"session_id":"s"}'
    body = b'{"items":[' + items + b"]}"
    delivery = decode_delivery(body)
    assert [item.user_ids for item in delivery.items] == [["a", "b"], ["a"]]
    assert bytes(delivery.items[0].frame) == b'{"type":"typing"}'
    assert delivery.items[1].session_id == "s"
    event = msgspec.json.decode(encode_session_event("a", "s", "g", 1.5), type=SessionEvent)
    assert event == SessionEvent(user_id="a", session_id="s", gateway_id="g", at=1.5)
