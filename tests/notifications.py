"""A webhook receiver for notification tests: a real HTTP server (uvicorn, port 0) that records every
request, and helpers to register it as a user's webhook and to wait for what it received."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from parlour.common.http.server import ParlourServer
from tests.clients import PASSWORD, Account, log_in, unique_username

STARTUP_TIMEOUT = 10.0
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """An ASGI app that answers 200 to every POST and keeps it, by path (one path per test user)."""

    received: list[Received] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        self.received.append(Received(scope["path"], headers, body, time.monotonic()))
        self._arrived.set()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    def at(self, path: str) -> list[Received]:
        """What arrived at `path`, in order."""
        return [request for request in self.received if request.path == path]

    async def wait(self, path: str, count: int = 1, within: float = 20.0) -> list[Received]:
        """Wait until `count` requests arrived at `path` (fails after `within` seconds); all of them."""
        async with asyncio.timeout(within):
            while len(self.at(path)) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.at(path)


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    """A receiver served on 127.0.0.1 (a port the kernel picks); yields it and its base URL."""
    receiver = WebhookReceiver()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = ParlourServer(uvicorn.Config(receiver, log_config=None, lifespan="off", log_level="warning", loop="none"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the webhook receiver stopped during start-up")
                await asyncio.sleep(0.005)
        yield receiver, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            listener.close()


async def named_account(http: httpx.AsyncClient, display_name: str) -> Account:
    """A signed-up, logged-in user shown as `display_name`."""
    username = unique_username(display_name.lower()[:4])
    body = {"username": username, "password": PASSWORD, "display_name": display_name}
    response = await http.post("/auth/users", json=body)
    assert response.status_code == 201, response.text
    pair = await log_in(http, username)
    return Account(response.json()["id"], username, pair["access_token"], pair["refresh_token"])


async def add_webhook(http: httpx.AsyncClient, account: Account, url: str) -> dict[str, Any]:
    """Register `url` as one of `account`'s webhooks; the answer (with its secret)."""
    response = await http.post("/api/notifications/webhooks", json={"url": url}, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def send(http: httpx.AsyncClient, account: Account, chat_id: str, body: str) -> int:
    """Send a message over REST as `account` (who has no connection: offline); its seq."""
    response = await http.post(
        f"/api/chats/{chat_id}/messages", json={"client_id": f"c{time.monotonic_ns()}", "body": body},
        headers=account.headers,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    seq: int = response.json()["seq"]
    return seq


async def mute(http: httpx.AsyncClient, account: Account, chat_id: str) -> httpx.Response:
    """`PUT /api/notifications/mutes/{chat_id}` as `account` (at once: a mute does not wait for
    notifications to hear of the membership)."""
    return await http.put(f"/api/notifications/mutes/{chat_id}", headers=account.headers)


async def read_up_to(http: httpx.AsyncClient, account: Account, chat_id: str, seq: int) -> None:
    """Mark the chat read up to `seq` as `account`, over REST."""
    response = await http.post(f"/api/chats/{chat_id}/read", json={"seq": seq}, headers=account.headers)
    assert response.status_code == 204, response.text
