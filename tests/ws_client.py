"""A small WebSocket client that speaks the gateway protocol, as a real client would (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.clients import Account

Frame = dict[str, Any]
TIMEOUT = 10.0


def ws_url(base_url: str, secret: str | None, **query: str) -> str:
    """The gateway's WebSocket URL on the server at `base_url`."""
    params = {"pass": secret, **query} if secret is not None else query
    encoded = "&".join(f"{key}={value}" for key, value in params.items())
    return base_url.replace("http://", "ws://", 1).rstrip("/") + "/gateway/ws" + (f"?{encoded}" if encoded else "")


async def get_pass(http: httpx.AsyncClient, account: Account) -> str:
    """A fresh one-time pass for `account`."""
    response = await http.post("/gateway/passes", headers=account.headers)
    assert response.status_code == 201, response.text
    secret: str = response.json()["pass"]
    return secret


class Client:
    """One connection: receives frames (unrolling `batch`, answering the server's `ping`), sends frames.

    `presence` frames (the snapshot after `hello`, then updates) come whenever contacts change; a test of
    something else would have to step over them, so they are set aside in `presence_frames` unless the
    client was connected with `presence=True`, when they are read like any other frame.
    """

    def __init__(self, connection: ClientConnection, hello: Frame, *, presence: bool = False) -> None:
        self.connection = connection
        self.hello = hello
        self.session_id: str = hello["session_id"]
        self.user_id: str = hello["user_id"]
        self.presence_frames: list[Frame] = []
        self._reads_presence = presence
        self._pending: list[Frame] = []

    @classmethod
    async def connect(
        cls, http: httpx.AsyncClient, account: Account, *, batch: bool = False, presence: bool = False, **options: Any
    ) -> Client:
        """Get a pass, open the socket, and wait for `hello` (the session is registered and routed then)."""
        query = {"batch": "1"} if batch else {}
        url = ws_url(str(http.base_url), await get_pass(http, account), **query)
        connection = await websockets.connect(url, max_size=None, **options)
        hello = json.loads(await asyncio.wait_for(connection.recv(), TIMEOUT))
        assert hello["type"] == "hello", hello
        return cls(connection, hello, presence=presence)

    async def send(self, frame: Frame) -> None:
        await self.connection.send(json.dumps(frame))

    async def send_message(self, chat_id: str, body: str, client_id: str | None = None) -> str:
        """Send `message.send`; returns its client id."""
        client_id = client_id or uuid.uuid4().hex
        await self.send({"type": "message.send", "chat_id": chat_id, "client_id": client_id, "body": body})
        return client_id

    async def _read(self) -> None:
        frame = json.loads(await self.connection.recv())
        for one in frame["frames"] if frame["type"] == "batch" else [frame]:
            if one["type"] == "ping":
                await self.send({"type": "pong"})
            elif one["type"] == "presence" and not self._reads_presence:
                self.presence_frames.append(one)
            else:
                self._pending.append(one)

    async def recv(self, within: float = TIMEOUT) -> Frame:
        """The next frame (a `ping` from the server is answered and skipped)."""
        async with asyncio.timeout(within):
            while not self._pending:
                await self._read()
        return self._pending.pop(0)

    async def take(self, match: Callable[[Frame], bool], within: float = TIMEOUT) -> Frame:
        """The first frame that matches, received or still to come; frames before it stay to be read."""
        async with asyncio.timeout(within):
            checked = 0
            while True:
                for index in range(checked, len(self._pending)):
                    if match(self._pending[index]):
                        return self._pending.pop(index)
                checked = len(self._pending)
                await self._read()

    async def until(self, match: Callable[[Frame], bool], within: float = TIMEOUT) -> list[Frame]:
        """Every frame up to and including the first that matches."""
        frames: list[Frame] = []
        async with asyncio.timeout(within):
            while True:
                frames.append(await self.recv(within))
                if match(frames[-1]):
                    return frames

    async def expect(self, kind: str, within: float = TIMEOUT, **fields: Any) -> Frame:
        """The first frame of type `kind` with these fields; other frames stay to be read."""
        return await self.take(
            lambda frame: frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()), within
        )

    async def messages(self, chat_id: str, count: int, within: float = TIMEOUT) -> list[Frame]:
        """The next `count` `message.new` frames of `chat_id`, in the order they came."""
        async with asyncio.timeout(within):
            return [
                await self.take(lambda frame: frame["type"] == "message.new" and frame["chat_id"] == chat_id)
                for _ in range(count)
            ]

    async def closed(self, within: float = TIMEOUT) -> tuple[int | None, str]:
        """Read until the server closes; its close code and reason (None: no close frame, a network failure)."""
        async with asyncio.timeout(within):
            try:
                while True:
                    await self.connection.recv()
            except websockets.ConnectionClosed as closed:
                received = closed.rcvd
                return (received.code, received.reason) if received else (None, "")

    async def close(self) -> None:
        await self.connection.close()


async def refused(http: httpx.AsyncClient, secret: str | None, **options: Any) -> tuple[int | None, str]:
    """Open the socket with `secret` and return the close code and reason the server answers with."""
    async with websockets.connect(ws_url(str(http.base_url), secret), **options) as connection:
        try:
            frame = await asyncio.wait_for(connection.recv(), TIMEOUT)
        except websockets.ConnectionClosed as closed:
            received = closed.rcvd
            return (received.code, received.reason) if received else (None, "")
    pytest.fail(f"the server accepted the connection and sent {frame!r}")


async def direct_chat(http: httpx.AsyncClient, one: Account, other: Account) -> str:
    """The direct chat of two users (created if needed); its id."""
    response = await http.post("/api/chats", json={"kind": "direct", "user_id": other.user_id}, headers=one.headers)
    assert response.status_code in {200, 201}, response.text
    chat_id: str = response.json()["id"]
    return chat_id


async def group_chat(http: httpx.AsyncClient, owner: Account, members: list[Account], title: str = "group") -> str:
    """A new group of `owner` and `members`; its id."""
    body = {"kind": "group", "title": title, "member_ids": [member.user_id for member in members]}
    response = await http.post("/api/chats", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    chat_id: str = response.json()["id"]
    return chat_id
