"""What the bench client says and hears, without I/O: one `Dialect` per server the bench can drive.

A dialect turns a received text frame into events (and protocol replies to send back), and builds the
frames the scenarios send. `ParlourDialect` speaks docs/protocol.md; the two peer dialects speak the
peers under parlour/bench/peers/ (a FastAPI broadcast server and a python-socketio room server), mapping their
messages onto the same events so one scenario drives all three. Differences in what is measured:

- Parlour assigns `seq` on the server and acknowledges each message after it is persisted; a peer
  persists nothing, so the sender numbers its messages itself and its own echo stands for the ack.
- Parlour's sockets are authenticated (one-time pass); the peers accept anyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple, Protocol

import msgspec

from parlour.common.contracts.commands import Resume, SendMessage

_encode = msgspec.json.encode
_decode = msgspec.json.decode


class Ack(msgspec.Struct, tag_field="type", tag="message.ack"):
    """Decoded straight from the frame (the hot path); other fields of the frame are skipped."""

    client_id: str
    chat_id: str
    seq: int


class New(msgspec.Struct, tag_field="type", tag="message.new"):
    chat_id: str
    seq: int
    sender_id: str
    body: str


class Rejected(NamedTuple):
    client_id: str
    code: str
    reason: str


class ServerError(NamedTuple):
    code: str
    reason: str
    client_id: str = ""  # the refused `message.send`'s, when it had one (`unavailable`: send it again)


class Presence(NamedTuple):
    """A `presence` frame: (user id, status) of each user in it, in the frame's order."""

    users: tuple[tuple[str, str], ...]


class Ready:
    """The connection is live: subscribed, and caught up when it asked to resume (one instance: READY)."""

    __slots__ = ()


class Probe:
    """A peer's warm-up frame: proves the connection is in the broadcast set (one instance: PROBE)."""

    __slots__ = ()


Event = Ack | New | Rejected | ServerError | Presence | Ready | Probe


class _Batch(msgspec.Struct, tag_field="type", tag="batch"):
    frames: list[msgspec.Raw]


_decode_hot = msgspec.json.Decoder(Ack | New | _Batch).decode
_decode_one = msgspec.json.Decoder(Ack | New).decode
READY = Ready()
PROBE = Probe()


def stamp_body(sent_ns: int, size: int, tag: str = "") -> str:
    """A message body carrying its send time (monotonic ns, one clock for every process of the machine),
    then `tag` if any (the chaos run's client id: which message a `message.new` carries)."""
    head = f"{sent_ns} {tag}" if tag else str(sent_ns)
    return head if size <= len(head) else head + " " + "x" * (size - len(head) - 1)


def body_tag(body: str) -> str:
    """The `tag` `stamp_body` put in `body` ("" if none)."""
    parts = body.split(" ", 2)
    return parts[1] if len(parts) > 1 and not parts[1].startswith("x") else ""


def body_sent_ns(body: str) -> int | None:
    """The send time `stamp_body` put in `body`, if any."""
    head = body.split(" ", 1)[0]
    return int(head) if head.isdigit() else None


class Dialect(Protocol):
    """One connection's protocol state."""

    authenticated: ClassVar[bool]  # needs accounts and a one-time pass
    server_seq: ClassVar[bool]  # the server numbers messages and supports resume

    def ws_path(self, ticket: str | None) -> str: ...

    def greeting(self, resume: Mapping[str, int] | None) -> tuple[list[str], bool]:
        """Frames to send once open, and whether the connection is ready without waiting for an answer."""
        ...

    def send(self, chat_id: str, client_id: str, seq: int, body: str) -> str: ...

    def probe(self) -> str: ...

    def feed(self, text: str) -> tuple[list[Event], list[str]]:
        """Events in a received frame, and frames to answer with."""
        ...


class ParlourDialect:
    """Parlour's gateway protocol (docs/protocol.md)."""

    authenticated: ClassVar[bool] = True
    server_seq: ClassVar[bool] = True

    def __init__(self, user_id: str, *, batch: bool = True) -> None:
        self.user_id = user_id
        self.batch = batch
        self.ready_on_hello = True

    def ws_path(self, ticket: str | None) -> str:
        return f"/gateway/ws?pass={ticket}" + ("&batch=1" if self.batch else "")

    def greeting(self, resume: Mapping[str, int] | None) -> tuple[list[str], bool]:
        """Resume at once when asked (ready on `resume.done`); otherwise ready on `hello`."""
        self.ready_on_hello = resume is None
        if resume is None:
            return [], False
        return [_encode(Resume(chats=dict(resume))).decode()], False

    def send(self, chat_id: str, client_id: str, seq: int, body: str) -> str:
        return _encode(SendMessage(chat_id=chat_id, client_id=client_id, body=body)).decode()

    def probe(self) -> str:
        raise NotImplementedError("Parlour connections are ready after resume.done; no probe needed")

    def feed(self, text: str) -> tuple[list[Event], list[str]]:
        try:
            hot = _decode_hot(text)
        except msgspec.ValidationError:
            pass  # another type: read it as plain JSON
        else:
            return self._unroll(hot.frames) if type(hot) is _Batch else ([hot], [])
        events: list[Event] = []
        replies: list[str] = []
        self._read(_decode(text), events, replies)
        return events, replies

    def _unroll(self, frames: list[msgspec.Raw]) -> tuple[list[Event], list[str]]:
        events: list[Event] = []
        replies: list[str] = []
        for raw in frames:
            try:
                events.append(_decode_one(raw))
            except msgspec.ValidationError:
                self._read(_decode(raw), events, replies)
        return events, replies

    def _read(self, frame: Any, events: list[Event], replies: list[str]) -> None:
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "batch":
            for inner in frame["frames"]:
                self._read(inner, events, replies)
        elif kind == "message.new":
            events.append(New(frame["chat_id"], frame["seq"], frame["sender_id"], frame["body"]))
        elif kind == "message.ack":
            events.append(Ack(frame["client_id"], frame["chat_id"], frame["seq"]))
        elif kind == "presence":
            events.append(Presence(tuple((str(user["user_id"]), str(user["status"])) for user in frame["users"])))
        elif kind == "resume.done" or (kind == "hello" and self.ready_on_hello):
            events.append(READY)
        elif kind == "message.rejected":
            events.append(Rejected(frame.get("client_id", ""), frame.get("code", ""), frame.get("reason", "")))
        elif kind == "error":
            events.append(ServerError(frame.get("code", ""), frame.get("reason", ""), frame.get("client_id") or ""))
        elif kind == "ping":
            replies.append('{"type":"pong"}')


class _PeerMessages:
    """Sender-numbered messages of the peers: the payload carries chat, seq, sender and client id."""

    authenticated: ClassVar[bool] = False
    server_seq: ClassVar[bool] = False

    def __init__(self, user_id: str, *, batch: bool = True) -> None:
        self.user_id = user_id  # `batch` is Parlour's; a peer has nothing like it

    @staticmethod
    def _payload(chat_id: str, client_id: str, seq: int, sender_id: str, body: str) -> dict[str, Any]:
        return {"chat": chat_id, "cid": client_id, "seq": seq, "from": sender_id, "body": body}

    def _events(self, payload: dict[str, Any]) -> list[Event]:
        if payload.get("probe"):
            return [PROBE]
        new = New(payload["chat"], payload["seq"], payload["from"], payload["body"])
        if new.sender_id == self.user_id:
            return [Ack(payload["cid"], new.chat_id, new.seq), new]
        return [new]


class BroadcastDialect(_PeerMessages):
    """parlour/bench/peers/fastapi_broadcast.py: every text frame a client sends goes to every connection."""

    def ws_path(self, ticket: str | None) -> str:
        return "/ws"

    def greeting(self, resume: Mapping[str, int] | None) -> tuple[list[str], bool]:
        return [], True

    def send(self, chat_id: str, client_id: str, seq: int, body: str) -> str:
        return _encode(self._payload(chat_id, client_id, seq, self.user_id, body)).decode()

    def probe(self) -> str:
        return '{"probe":1}'

    def feed(self, text: str) -> tuple[list[Event], list[str]]:
        return self._events(_decode(text)), []


class SocketIODialect(_PeerMessages):
    """parlour/bench/peers/socketio_rooms.py over Engine.IO 4 / Socket.IO 5 on a plain WebSocket."""

    ROOM = "bench"

    def ws_path(self, ticket: str | None) -> str:
        return "/socket.io/?EIO=4&transport=websocket"

    def greeting(self, resume: Mapping[str, int] | None) -> tuple[list[str], bool]:
        return [], False  # the server speaks first (Engine.IO open), then we join the room

    def send(self, chat_id: str, client_id: str, seq: int, body: str) -> str:
        return "42" + _encode(["msg", self._payload(chat_id, client_id, seq, self.user_id, body)]).decode()

    def probe(self) -> str:
        return '42["msg",{"probe":1}]'

    def feed(self, text: str) -> tuple[list[Event], list[str]]:
        if text.startswith("42"):
            name, payload = _decode(text[2:])
            return (self._events(payload) if name == "msg" else []), []
        if text.startswith("44"):
            return [ServerError("connect_error", text[2:])], []
        return self._handshake(text)

    def _handshake(self, text: str) -> tuple[list[Event], list[str]]:
        if text == "2":  # Engine.IO ping
            return [], ["3"]
        if text.startswith("0"):  # Engine.IO open: connect to the default namespace
            return [], ["40"]
        if text.startswith("40"):  # namespace connected: join the room, asking for an ack (id 1)
            return [], ["421" + _encode(["join", self.ROOM]).decode()]
        if text.startswith("431"):  # the join was acknowledged
            return [READY], []
        return [], []


DIALECTS: dict[str, type[ParlourDialect] | type[BroadcastDialect] | type[SocketIODialect]] = {
    "parlour": ParlourDialect,
    "fastapi": BroadcastDialect,
    "socketio": SocketIODialect,
}
