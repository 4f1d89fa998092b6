"""Property-based fuzzing of the gateway's WebSocket frames (hypothesis) against a running Parlour.

Each example opens an authenticated connection, sends a batch of generated frames (commands of every type
the contract declares with fields of any JSON shape, unknown types, deep nesting, text that is not JSON,
invalid UTF-8 in a text frame, binary frames, frames at and past the size limit), then a `ping` as a
barrier. The property: the connection either answers that ping or is closed with a close frame whose code
the protocol documents, never dropped without one; then a healthy pair of clients still chats. At the end
the server has logged no traceback and no error.

The server runs on its own event loop in a thread, so hypothesis drives plain synchronous clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from queue import Queue
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from parlour.common.contracts.commands import COMMAND_TYPES
from parlour.common.logging import QuietClientFaults
from parlour.gateway.domain.protocol import CloseCode
from tests.clients import PASSWORD, unique_username
from tests.harness import LoggedProblems, logged_problems, make_settings, running_parlour
from tests.ws_client import ws_url

pytestmark = pytest.mark.slow

MAX_FRAME_BYTES = 4096
EXAMPLES = 150
TIMEOUT = 10.0
DOCUMENTED_CLOSE_CODES = {int(code) for code in CloseCode}


@dataclass(frozen=True)
class Binary:
    """A binary frame's payload."""

    data: bytes


@dataclass(frozen=True)
class TextBytes:
    """A text frame's payload as raw bytes: may be invalid UTF-8."""

    data: bytes


Outbound = str | Binary | TextBytes


@dataclass(frozen=True)
class Server:
    base_url: str
    http: httpx.Client
    chat_id: str
    fuzzer: dict[str, str]
    pair: tuple[dict[str, str], dict[str, str]]
    problems: LoggedProblems


def _account(http: httpx.Client) -> dict[str, str]:
    username = unique_username("fz")
    created = http.post("/auth/users", json={"username": username, "password": PASSWORD})
    assert created.status_code == 201, created.text
    tokens = http.post("/auth/sessions", json={"username": username, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return {"user_id": created.json()["id"], "authorization": f"Bearer {tokens.json()['access_token']}"}


def _direct_chat(http: httpx.Client, one: dict[str, str], other: dict[str, str]) -> str:
    answer = http.post(
        "/api/chats",
        json={"kind": "direct", "user_id": other["user_id"]},
        headers={"Authorization": one["authorization"]},
    )
    assert answer.status_code in (200, 201), answer.text
    chat_id: str = answer.json()["id"]
    return chat_id


@contextmanager
def _connected(server: Server, account: dict[str, str]) -> Iterator[ClientConnection]:
    """An authenticated connection that has had its `hello`; closed on exit."""
    issued = server.http.post("/gateway/passes", headers={"Authorization": account["authorization"]})
    assert issued.status_code == 201, issued.text
    with connect(ws_url(server.base_url, issued.json()["pass"]), max_size=None, open_timeout=TIMEOUT) as connection:
        hello = json.loads(connection.recv(timeout=TIMEOUT))
        assert hello["type"] == "hello", hello
        yield connection


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An embedded Parlour on its own loop in a thread, with one chat the fuzzer is a member of."""
    unlimited = 10**6
    config = make_settings(
        tmp_path_factory.mktemp("ws-fuzz"),
        None,
        gateway_max_frame_bytes=MAX_FRAME_BYTES,
        gateway_frames_per_second=float(unlimited),
        gateway_frame_burst=unlimited,
        passes_per_minute=unlimited,
        login_attempts_per_address=unlimited,
    )
    # The filters `parlour run` puts on the server's logger (configure_logging), here alone: the rest of the
    # logging configuration belongs to the test process.
    server_log = logging.getLogger("uvicorn.error")
    quiet = QuietClientFaults()
    server_log.addFilter(quiet)
    started: Queue[str | BaseException] = Queue()
    stop = threading.Event()

    async def serve() -> None:
        try:
            async with running_parlour(config) as base_url:
                started.put(base_url)
                await asyncio.to_thread(stop.wait)
        except BaseException as exc:  # the test thread must hear of a failed start-up, not hang
            started.put(exc)
            raise

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="ws-fuzz-server")
    with logged_problems() as problems:
        thread.start()
        try:
            base_url = started.get(timeout=60)
            if isinstance(base_url, BaseException):
                raise base_url
            with httpx.Client(base_url=base_url, timeout=TIMEOUT) as http:
                fuzzer, one, other = _account(http), _account(http), _account(http)
                chat_id = _direct_chat(http, fuzzer, one)
                _direct_chat(http, one, other)
                yield Server(base_url, http, chat_id, fuzzer, (one, other), problems)
        finally:
            stop.set()
            thread.join(timeout=60)
            server_log.removeFilter(quiet)


def _field_names() -> list[str]:
    names = {field.name for frame in COMMAND_TYPES.values() for field in msgspec.structs.fields(frame)}
    return sorted(names | {"id", "chats", "seq", "after_seq"})


_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
)
_json = st.recursive(
    _leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _frames(chat_id: str) -> st.SearchStrategy[Outbound]:
    value = _json | st.just(chat_id) | st.text(min_size=1, max_size=64)
    fields = st.dictionaries(st.sampled_from(_field_names()) | st.text(max_size=10), value, max_size=6)
    kind = st.sampled_from(sorted(COMMAND_TYPES)) | st.text(max_size=16)
    command = st.builds(lambda t, f: json.dumps({**f, "type": t}), kind, fields)
    deep = st.integers(min_value=1, max_value=20_000).map(lambda d: '{"type":"ping","id":' + "[" * d + "]" * d + "}")
    sized = st.integers(min_value=MAX_FRAME_BYTES - 64, max_value=MAX_FRAME_BYTES + 64).map(
        lambda n: json.dumps({"type": "message.send", "chat_id": chat_id, "client_id": "c", "body": "x" * n})
    )
    return st.one_of(
        command,
        command,
        _json.map(json.dumps),
        st.text(max_size=200),
        deep,
        sized,
        st.binary(max_size=200).map(Binary),
    )


# A text frame that is not UTF-8 makes the WebSocket layer fail the connection at once (1007 and a TCP
# close, RFC 6455 7.1.7): frames the client still sends then meet a reset, which can destroy the close
# frame before the client reads it. So such a frame only ever ends a batch.
_last_frame = st.none() | st.builds(
    lambda before, after: TextBytes(before + b"\xff" + after), st.binary(max_size=100), st.binary(max_size=100)
)


def _send(connection: ClientConnection, frame: Outbound) -> None:
    if isinstance(frame, Binary):
        connection.send(frame.data, text=False)
    elif isinstance(frame, TextBytes):
        connection.send(frame.data, text=True)
    else:
        connection.send(frame)


def _assert_closed_properly(closed: ConnectionClosed) -> None:
    assert closed.rcvd is not None, f"dropped without a close frame: {closed!r}"
    assert closed.rcvd.code in DOCUMENTED_CLOSE_CODES, f"undocumented close code {closed.rcvd.code}"


def _answered_or_closed_properly(connection: ClientConnection, barrier: str) -> dict[str, Any] | None:
    """Read until the `pong` for `barrier` (returned), or the close (None); fail on a drop without a code."""
    try:
        while True:
            raw = connection.recv(timeout=TIMEOUT)
            frames = json.loads(raw)
            for frame in frames if isinstance(frames, list) else [frames]:
                if frame.get("type") == "pong" and frame.get("id") == barrier:
                    return dict(frame)
                if frame.get("type") == "ping":
                    connection.send(json.dumps({"type": "pong", "id": frame.get("id")}))
    except ConnectionClosed as closed:
        _assert_closed_properly(closed)
        return None
    except TimeoutError:
        pytest.fail("the gateway neither answered the barrier ping nor closed the connection")


def _still_chats(server: Server) -> None:
    one, other = server.pair
    chat_id = _direct_chat(server.http, one, other)
    with _connected(server, one) as sender, _connected(server, other) as receiver:
        client_id = uuid.uuid4().hex
        sender.send(json.dumps({"type": "message.send", "chat_id": chat_id, "client_id": client_id, "body": "ok"}))
        while True:
            frame = json.loads(receiver.recv(timeout=TIMEOUT))
            if frame.get("type") == "message.new" and frame.get("chat_id") == chat_id and frame["body"] == "ok":
                return


def test_fuzzed_frames_get_an_answer_or_a_documented_close_and_the_server_keeps_chatting(server: Server) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI is reproducible, a failure replays
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(batch=st.lists(_frames(server.chat_id), max_size=12), last=_last_frame)
    def batch_is_survived(batch: list[Outbound], last: TextBytes | None) -> None:
        barrier = uuid.uuid4().hex
        with _connected(server, server.fuzzer) as connection:
            try:
                for frame in batch:
                    _send(connection, frame)
                _send(connection, last or json.dumps({"type": "ping", "id": barrier}))
            except ConnectionClosed as closed:  # closed while we were still sending: the close must say why
                _assert_closed_properly(closed)
            else:
                answer = _answered_or_closed_properly(connection, barrier)
                assert last is None or answer is None, "a text frame that is not UTF-8 did not close the connection"
        _still_chats(server)

    batch_is_survived()
    assert server.problems.seen == []
