"""The WebSocket codec: client frames to session inputs, server frames described, bus messages."""

from __future__ import annotations

import json

import msgspec
import pytest

from parlour.common.contracts import CommandBatch, SessionEvent, SessionEvents
from parlour.gateway.adapters.codec import (
    decode_binary,
    decode_delivery,
    decode_text,
    encode_commands,
    encode_session_events,
    frame_info,
)
from parlour.gateway.domain.protocol import (
    ClientPing,
    ClientPong,
    Destination,
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
    assert (result.type, result.partition_key, result.client_id) == ("message.send", "c1", "k1")
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
    assert result.partition_key == "c1"
    assert json.loads(result.payload) == frame


def test_control_frames_decode_to_their_inputs() -> None:
    assert decode({"type": "ping"}) == ClientPing()
    assert decode({"type": "ping", "id": "abc"}) == ClientPing("abc")
    assert decode({"type": "pong"}) == ClientPong()
    resume = decode({"type": "resume", "chats": {"c1": 3}})
    assert resume == ResumeRequest({"c1": 3}, "resume", b'{"type":"resume","chats":{"c1":3}}')
    assert decode({"type": "resume"}) == ResumeRequest({}, "resume", b'{"type":"resume","chats":{}}')


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


@pytest.mark.parametrize("field", ["id", "client_id", "chat_id", "unknown"])
def test_a_frame_nested_too_deeply_is_refused_as_invalid_json_not_a_crash(field: str) -> None:
    text = '{"type":"ping","' + field + '":' + "[" * 5_000 + "]" * 5_000 + "}"
    result = decode_text(text, LIMIT)
    assert isinstance(result, Rejected)
    assert result.code is ErrorCode.INVALID_JSON
    assert frame_info(("[" * 5_000).encode()) is None


def test_frame_info_reads_only_what_hold_and_dedup_need() -> None:
    frame = b'{"type":"message.new","chat_id":"c1","seq":9,"body":"x","sender_id":"u","extra":{"a":[1]}}'
    assert frame_info(frame) == FrameInfo("message.new", "c1", 9)
    done = b'{"type":"resume.done","chats":{"c1":9,"c2":0},"truncated":["c3"]}'
    assert frame_info(done) == FrameInfo("resume.done", chats={"c1": 9, "c2": 0})
    assert frame_info(b"not json") is None


def test_commands_of_a_partition_travel_as_one_batch_each_stamped_with_its_connection() -> None:
    first = b'{"type":"message.send","body":"hi"}'
    body = encode_commands([("alice", "s1", first), ("bob", "s2", b'{"type":"typing","chat_id":"c"}')])
    batch = msgspec.json.decode(body, type=CommandBatch)
    assert [(c.user_id, c.session_id) for c in batch.commands] == [("alice", "s1"), ("bob", "s2")]
    assert json.loads(bytes(batch.commands[0].command)) == {"type": "message.send", "body": "hi"}


def test_deliveries_and_session_events_round_trip() -> None:
    items = b'{"user_ids":["a","b"],"frame":{"type":"typing"}},{"user_ids":["a"],"frame":{},"session_id":"s"}'
    body = b'{"items":[' + items + b"]}"
    delivery = decode_delivery(body)
    assert [item.user_ids for item in delivery.items] == [["a", "b"], ["a"]]
    assert bytes(delivery.items[0].frame) == b'{"type":"typing"}'
    assert delivery.items[1].session_id == "s"
    events = [
        SessionEvent(kind="opened", user_id="a", session_id="s", gateway_id="g", at=1.5),
        SessionEvent(kind="closed", user_id="a", session_id="s", gateway_id="g", at=2.0),
    ]
    assert msgspec.json.decode(encode_session_events(events), type=SessionEvents).events == events


def test_activity_goes_to_presence_keyed_by_its_sender() -> None:
    result = decode({"type": "activity", "state": "idle", "user_id": "mallory"})
    assert isinstance(result, Forward)
    assert (result.type, result.partition_key, result.destination) == ("activity", None, Destination.PRESENCE)
    assert json.loads(result.payload) == {"type": "activity", "state": "idle"}


@pytest.mark.parametrize("state", ["asleep", None, 1])
def test_an_activity_with_an_unknown_state_is_an_invalid_frame(state: object) -> None:
    result = decode({"type": "activity", "state": state})
    assert isinstance(result, Rejected)
    assert result.code is ErrorCode.INVALID_FRAME
