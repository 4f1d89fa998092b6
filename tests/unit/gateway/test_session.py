"""The session state machine, driven by hand: no sockets, no event loop, time passed in."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parlour.gateway.domain.protocol import (
    ClientPing,
    ClientPong,
    CloseCode,
    ErrorCode,
    Forward,
    FrameInfo,
    Rejected,
    ResumeRequest,
)
from parlour.gateway.domain.session import Command, Session, SessionLimits, SessionState

LIMITS = SessionLimits(
    send_buffer_frames=8,
    send_buffer_bytes=10_000,
    hold_frames=4,
    rate_per_second=1.0,
    rate_burst=5,
    abuse_burst=3,
    abuse_per_second=0.1,
    ping_interval=20.0,
    ping_timeout=10.0,
    resume_timeout=30.0,
)


def opened(limits: SessionLimits = LIMITS) -> Session:
    session = Session("s1", "alice", limits, now=0.0)
    hello = frames(session)
    assert [frame["type"] for frame in hello] == ["hello"]
    assert hello[0]["session_id"] == "s1"
    assert hello[0]["user_id"] == "alice"
    return session


def frames(session: Session) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in session.data_to_send()]


def message(chat: str, seq: int, kind: str = "message.new") -> tuple[bytes, FrameInfo]:
    frame = json.dumps({"type": kind, "chat_id": chat, "seq": seq}).encode()
    return frame, FrameInfo(kind, chat, seq)


def send(chat: str = "c1", client_id: str = "k1") -> Forward:
    return Forward("message.send", chat, b'{"type":"message.send"}', client_id)


def test_a_session_opens_with_hello_naming_itself_and_its_limits() -> None:
    session = Session("s1", "alice", LIMITS, now=0.0)
    (hello,) = frames(session)
    assert hello == {
        "type": "hello",
        "session_id": "s1",
        "user_id": "alice",
        "ping_interval": 20.0,
        "ping_timeout": 10.0,
        "max_frame_bytes": LIMITS.max_frame_bytes,
    }


def test_a_client_command_becomes_a_command_partitioned_by_its_chat() -> None:
    session = opened()
    session.receive(send("c9", "k1"), now=0.0)
    assert session.commands_to_send() == [Command("message.send", "c9", b'{"type":"message.send"}', "k1")]
    assert session.commands_to_send() == []


def test_ping_is_answered_with_pong_echoing_its_id() -> None:
    session = opened()
    session.receive(ClientPing(7), now=0.0)
    session.receive(ClientPing(), now=0.0)
    assert frames(session) == [{"type": "pong", "id": 7}, {"type": "pong"}]


def test_a_rejected_frame_is_answered_with_an_error_carrying_its_code_and_client_id() -> None:
    session = opened()
    session.receive(Rejected(ErrorCode.INVALID_FRAME, "no body", "k2"), now=0.0)
    assert frames(session) == [{"type": "error", "code": "invalid_frame", "reason": "no body", "client_id": "k2"}]
    assert session.state is SessionState.OPEN


def test_the_rate_limit_allows_a_burst_then_drops_frames_with_rate_limited() -> None:
    session = opened()
    for _ in range(5):
        session.receive(send(), now=0.0)
    session.receive(send(), now=0.0)
    assert len(session.commands_to_send()) == 5
    (error,) = frames(session)
    assert error["code"] == "rate_limited"
    assert error["retry_after"] == pytest.approx(1.0)


def test_the_rate_limit_refills_with_time() -> None:
    session = opened()
    for _ in range(5):
        session.receive(send(), now=0.0)
    session.receive(send(), now=2.0)
    session.receive(send(), now=2.0)
    assert len(session.commands_to_send()) == 7


def test_a_flood_is_closed_with_4029_after_the_error_allowance() -> None:
    session = opened()
    for _ in range(100):
        session.receive(ClientPing(), now=0.0)
    out = frames(session)
    assert [frame["type"] for frame in out] == ["pong"] * 5 + ["error"] * 3
    close = session.close_to_send
    assert close is not None
    assert close.code is CloseCode.RATE_LIMITED


@pytest.mark.parametrize(
    ("code", "close_code"),
    [
        (ErrorCode.INVALID_JSON, CloseCode.POLICY_VIOLATION),
        (ErrorCode.UNKNOWN_TYPE, CloseCode.POLICY_VIOLATION),
        (ErrorCode.BINARY_UNSUPPORTED, CloseCode.POLICY_VIOLATION),
        (ErrorCode.FRAME_TOO_LARGE, CloseCode.MESSAGE_TOO_BIG),
    ],
)
def test_repeated_abuse_closes_after_its_errors_are_flushed(code: ErrorCode, close_code: CloseCode) -> None:
    session = opened(SessionLimits(abuse_burst=2, abuse_per_second=0.01))
    for _ in range(3):
        session.receive(Rejected(code, "bad"), now=0.0)
    assert session.state is SessionState.CLOSING
    before_flush = session.close_to_send
    assert before_flush is None  # the two error frames go first
    assert [frame["code"] for frame in frames(session)] == [code.value, code.value]
    close = session.close_to_send
    assert close is not None
    assert close.code is close_code


def test_abuse_allowance_is_regained_over_time() -> None:
    session = opened(SessionLimits(abuse_burst=1, abuse_per_second=0.1))
    session.receive(Rejected(ErrorCode.INVALID_JSON, "bad"), now=0.0)
    session.receive(Rejected(ErrorCode.INVALID_JSON, "bad"), now=10.0)
    assert session.state is SessionState.OPEN


def test_an_overflowing_send_buffer_closes_with_slow_consumer_and_drops_the_buffer() -> None:
    session = opened()
    for seq in range(1, 10):
        session.deliver(*message("c1", seq))
    assert session.state is SessionState.CLOSING
    close = session.close_to_send
    assert close is not None
    assert close.code is CloseCode.SLOW_CONSUMER
    assert not close.flush
    assert session.data_to_send() == []


def test_the_send_buffer_is_bounded_in_bytes_too() -> None:
    session = opened(SessionLimits(send_buffer_frames=100, send_buffer_bytes=1_000))
    session.deliver(b"x" * 600, None)
    session.deliver(b"x" * 600, None)
    assert session.closing is not None
    assert session.closing.code is CloseCode.SLOW_CONSUMER


def test_a_buffer_drained_in_time_never_overflows() -> None:
    session = opened()
    for seq in range(1, 100):
        session.deliver(*message("c1", seq))
        assert len(session.data_to_send()) == 1
    assert session.state is SessionState.OPEN


def test_the_server_pings_after_the_interval_and_closes_without_a_pong() -> None:
    session = opened()
    session.tick(19.9)
    assert frames(session) == []
    session.tick(20.0)
    assert frames(session) == [{"type": "ping"}]
    session.tick(29.9)
    assert session.state is SessionState.OPEN
    session.tick(30.0)
    close = session.close_to_send
    assert close is not None
    assert close.code is CloseCode.PING_TIMEOUT


def test_a_pong_keeps_the_session_and_is_never_rate_limited() -> None:
    session = opened(SessionLimits(rate_burst=1, rate_per_second=0.001, ping_interval=20, ping_timeout=10))
    session.receive(ClientPing(), now=0.0)  # the only token
    session.tick(20.0)
    session.receive(ClientPong(), now=21.0)
    session.tick(35.0)
    assert session.state is SessionState.OPEN
    session.tick(40.0)
    assert [frame["type"] for frame in frames(session)] == ["pong", "ping", "ping"]


def test_resume_becomes_a_command_partitioned_by_the_user() -> None:
    session = opened()
    payload = b'{"type":"resume","chats":{"c1":4,"c2":0}}'
    session.receive(ResumeRequest({"c1": 4, "c2": 0}, "resume", payload), now=0.0)
    (command,) = session.commands_to_send()
    assert (command.type, command.partition_key, command.payload, command.resume) == ("resume", "alice", payload, True)
    assert session.resuming


def test_a_command_routed_by_its_sender_is_partitioned_by_the_user() -> None:
    session = opened()
    session.receive(Forward("resume", None, b"{}"), now=0.0)
    (command,) = session.commands_to_send()
    assert command.partition_key == "alice"


def test_a_second_resume_before_resume_done_is_refused() -> None:
    session = opened()
    session.receive(ResumeRequest({}), now=0.0)
    session.receive(ResumeRequest({}), now=0.0)
    assert len(session.commands_to_send()) == 1
    assert [frame["code"] for frame in frames(session)] == ["resume_in_progress"]


def test_live_messages_are_held_during_resume_and_only_new_ones_released_after_resume_done() -> None:
    session = opened()
    session.receive(ResumeRequest({"c1": 4}), now=0.0)
    for seq in (5, 6, 7):
        session.deliver(*message("c1", seq))
    session.deliver(b'{"type":"typing","chat_id":"c1"}', FrameInfo("typing", "c1"))
    assert [frame["type"] for frame in frames(session)] == ["typing"]
    for seq in (5, 6):
        session.answer(*message("c1", seq))
    done = b'{"type":"resume.done","chats":{"c1":6},"truncated":[]}'
    session.answer(done, FrameInfo("resume.done", chats={"c1": 6}))
    out = frames(session)
    assert [(frame["type"], frame.get("seq")) for frame in out] == [
        ("message.new", 5),
        ("message.new", 6),
        ("resume.done", None),
        ("message.new", 7),
    ]
    assert not session.resuming


def test_after_resume_a_late_live_copy_of_a_resumed_message_is_dropped() -> None:
    session = opened()
    session.receive(ResumeRequest({"c1": 0}), now=0.0)
    session.answer(*message("c1", 1))
    session.answer(b'{"type":"resume.done"}', FrameInfo("resume.done", chats={"c1": 1}))
    frames(session)
    session.deliver(*message("c1", 1))
    session.deliver(*message("c1", 2))
    assert [frame["seq"] for frame in frames(session)] == [2]


def test_edits_and_deletions_held_during_resume_are_always_released() -> None:
    session = opened()
    session.receive(ResumeRequest({"c1": 0}), now=0.0)
    session.deliver(*message("c1", 1, "message.edited"))
    session.deliver(*message("c1", 1, "message.deleted"))
    session.answer(b'{"type":"resume.done"}', FrameInfo("resume.done", chats={"c1": 1}))
    assert [frame["type"] for frame in frames(session)] == ["resume.done", "message.edited", "message.deleted"]


def test_answers_for_the_session_are_never_held() -> None:
    session = opened()
    session.receive(ResumeRequest({}), now=0.0)
    session.answer(b'{"type":"message.ack","chat_id":"c1","seq":3}', FrameInfo("message.ack", "c1", 3))
    assert [frame["type"] for frame in frames(session)] == ["message.ack"]


def test_too_many_live_messages_during_resume_close_with_resume_failed() -> None:
    session = opened()
    session.receive(ResumeRequest({}), now=0.0)
    for seq in range(1, 6):
        session.deliver(*message("c1", seq))
    assert session.closing is not None
    assert session.closing.code is CloseCode.RESUME_FAILED


def test_a_resume_without_answer_times_out_with_resume_failed() -> None:
    session = opened()
    session.receive(ResumeRequest({}), now=1.0)
    session.tick(30.9)
    assert session.state is SessionState.OPEN
    session.tick(31.0)
    assert session.closing is not None
    assert session.closing.code is CloseCode.RESUME_FAILED


def test_a_command_that_could_not_be_forwarded_is_reported_and_a_failed_sync_can_be_retried() -> None:
    session = opened()
    session.receive(ResumeRequest({}), now=0.0)
    (sync,) = session.commands_to_send()
    session.command_failed(sync, "bus down")
    session.command_failed(Command("message.send", "c1", b"{}", "k1"), "bus down")
    out = frames(session)
    assert [(frame["code"], frame.get("client_id")) for frame in out] == [("unavailable", None), ("unavailable", "k1")]
    session.receive(ResumeRequest({}), now=0.0)
    assert len(session.commands_to_send()) == 1


def test_the_first_close_wins_and_a_flushing_close_goes_after_the_buffer() -> None:
    session = opened()
    session.deliver(*message("c1", 1))
    session.close(CloseCode.SERVICE_RESTART, "restart", flush=True)
    session.close(CloseCode.SLOW_CONSUMER, "late")
    before_flush = session.close_to_send
    assert before_flush is None
    assert len(session.data_to_send()) == 1
    close = session.close_to_send
    assert close is not None
    assert close.code is CloseCode.SERVICE_RESTART


def test_nothing_goes_in_or_out_once_closed() -> None:
    session = opened()
    session.close(CloseCode.NORMAL, "bye")
    session.receive(send(), now=0.0)
    session.deliver(*message("c1", 1))
    session.answer(*message("c1", 1))
    session.tick(100.0)
    assert session.data_to_send() == []
    assert session.commands_to_send() == []
    session.closed()
    assert session.state is SessionState.CLOSED
    assert session.close_to_send is None


def test_close_codes_say_whether_to_reconnect() -> None:
    assert CloseCode.SLOW_CONSUMER.reconnect
    assert CloseCode.SERVICE_RESTART.reconnect
    assert CloseCode.PASS_REJECTED.reconnect  # with a new pass
    assert not CloseCode.ORIGIN_FORBIDDEN.reconnect
    assert not CloseCode.POLICY_VIOLATION.reconnect


def test_a_large_resume_answer_does_not_count_against_the_send_buffer() -> None:
    session = opened()
    session.receive(ResumeRequest({}), now=0.0)
    for seq in range(1, 101):
        session.answer(*message("c1", seq))
    session.answer(b'{"type":"resume.done"}', FrameInfo("resume.done", chats={"c1": 100}))
    assert session.state is SessionState.OPEN
    for seq in range(101, 101 + LIMITS.send_buffer_frames):
        session.deliver(*message("c1", seq))
    assert session.state is SessionState.OPEN
    session.deliver(*message("c1", 500))
    assert session.closing is not None
    assert session.closing.code is CloseCode.SLOW_CONSUMER
