"""The bench client's dialects, frame by frame, without sockets."""

from __future__ import annotations

import json

from parlour.bench.protocol import (
    PROBE,
    READY,
    Ack,
    BroadcastDialect,
    New,
    ParlourDialect,
    Rejected,
    ServerError,
    SocketIODialect,
    body_sent_ns,
    stamp_body,
)


def test_a_body_carries_its_send_time_and_has_the_asked_size() -> None:
    body = stamp_body(123456789, 64)
    assert len(body) == 64
    assert body_sent_ns(body) == 123456789
    assert body_sent_ns(stamp_body(5, 1)) == 5
    assert body_sent_ns("hello") is None


def test_parlour_resumes_on_open_and_is_ready_on_resume_done() -> None:
    dialect = ParlourDialect("u1")
    frames, ready_now = dialect.greeting({"c1": 4})
    assert json.loads(frames[0]) == {"type": "resume", "chats": {"c1": 4}}
    assert not ready_now
    assert dialect.feed('{"type":"hello","session_id":"s","user_id":"u1"}') == ([], [])
    assert dialect.feed('{"type":"resume.done","chats":{"c1":4},"truncated":[],"removed":[]}') == ([READY], [])


def test_parlour_without_resume_is_ready_on_hello() -> None:
    dialect = ParlourDialect("u1")
    assert dialect.greeting(None) == ([], False)
    assert dialect.feed('{"type":"hello","session_id":"s","user_id":"u1"}') == ([READY], [])


def test_parlour_asks_for_batch_frames_unless_told_not_to() -> None:
    assert ParlourDialect("u", batch=True).ws_path("p") == "/gateway/ws?pass=p&batch=1"
    assert ParlourDialect("u", batch=False).ws_path("p") == "/gateway/ws?pass=p"


def test_parlour_send_frame_is_message_send() -> None:
    frame = json.loads(ParlourDialect("u1").send("c1", "k1", 7, "hi"))
    assert frame == {"type": "message.send", "chat_id": "c1", "client_id": "k1", "body": "hi"}


def test_parlour_events_from_server_frames() -> None:
    dialect = ParlourDialect("u1")
    new = {
        "type": "message.new",
        "chat_id": "c",
        "seq": 2,
        "message_id": "m",
        "sender_id": "u2",
        "body": "b",
        "created_at": "2026-01-01T00:00:00Z",
    }
    ack = {"type": "message.ack", "client_id": "k", "chat_id": "c", "seq": 2, "message_id": "m"}
    assert dialect.feed(json.dumps(new)) == ([New("c", 2, "u2", "b")], [])
    assert dialect.feed(json.dumps(ack)) == ([Ack("k", "c", 2)], [])
    rejected = {"type": "message.rejected", "client_id": "k", "code": "rate_limited", "reason": "slow down"}
    assert dialect.feed(json.dumps(rejected)) == ([Rejected("k", "rate_limited", "slow down")], [])
    assert dialect.feed('{"type":"error","code":"bad","reason":"r"}') == ([ServerError("bad", "r")], [])
    assert dialect.feed('{"type":"typing","chat_id":"c"}') == ([], [])


def test_parlour_batch_frames_are_unrolled_in_order() -> None:
    batch = {
        "type": "batch",
        "frames": [
            {"type": "message.ack", "client_id": "k", "chat_id": "c", "seq": 1, "message_id": "m"},
            {"type": "chat", "chat_id": "c", "kind": "direct"},
            {"type": "message.new", "chat_id": "c", "seq": 2, "sender_id": "u2", "body": "b", "deleted": False},
            {"type": "ping"},
            {"type": "resume.done", "chats": {}},
        ],
    }
    assert ParlourDialect("u").feed(json.dumps(batch)) == (
        [Ack("k", "c", 1), New("c", 2, "u2", "b"), READY],
        ['{"type":"pong"}'],
    )


def test_parlour_answers_an_application_ping() -> None:
    assert ParlourDialect("u").feed('{"type":"ping"}') == ([], ['{"type":"pong"}'])


def test_a_broadcast_peer_echo_of_our_own_message_is_our_ack() -> None:
    me, other = BroadcastDialect("0"), BroadcastDialect("1")
    frame = me.send("room", "0.1", 1, "b")
    assert me.feed(frame) == ([Ack("0.1", "room", 1), New("room", 1, "0", "b")], [])
    assert other.feed(frame) == ([New("room", 1, "0", "b")], [])
    assert other.feed(me.probe()) == ([PROBE], [])
    assert me.greeting(None) == ([], True)


def test_socketio_handshake_joins_the_room_then_is_ready() -> None:
    dialect = SocketIODialect("3")
    assert dialect.greeting(None) == ([], False)
    assert dialect.feed('0{"sid":"x","pingInterval":25000}') == ([], ["40"])
    events, replies = dialect.feed('40{"sid":"y"}')
    assert events == []
    assert replies == ['421["join","bench"]']
    assert dialect.feed('431["joined"]') == ([READY], [])
    assert dialect.feed("2") == ([], ["3"])


def test_socketio_messages_and_probes() -> None:
    me, other = SocketIODialect("0"), SocketIODialect("1")
    frame = me.send("room", "0.1", 1, "b")
    assert frame.startswith('42["msg",')
    assert other.feed(frame) == ([New("room", 1, "0", "b")], [])
    assert me.feed(frame)[0][0] == Ack("0.1", "room", 1)
    assert other.feed(me.probe()) == ([PROBE], [])
    assert other.feed('44{"message":"no"}')[0][0].code == "connect_error"  # type: ignore[union-attr]
