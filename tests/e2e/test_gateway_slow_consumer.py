"""A client that stops reading is cut off (close 4000) while everyone else keeps getting messages on time."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.clients import new_account
from tests.harness import make_settings, running_parlour
from tests.ws_client import Client, get_pass, group_chat

pytestmark = pytest.mark.slow

SLOW_CONSUMER = 4000
ON_TIME = 2.0  # seconds from send to receipt for the reader that keeps up
BODY = "x" * 3900
WINDOW = 25  # messages in flight at once


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, gateway_send_buffer_frames=256, gateway_frames_per_second=1000.0)
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


class StalledClient:
    """A WebSocket client that completes the handshake and then never reads again (a frozen tab).

    A raw socket with a tiny receive buffer: the websockets library would keep reading into its own queue.
    """

    def __init__(self, base_url: str, secret: str) -> None:
        parts = urlsplit(base_url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /gateway/ws?pass={secret} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.received = self.sock.recv(1024)
        assert self.received.startswith(b"HTTP/1.1 101"), self.received

    def close_code(self) -> int | None:
        """Read everything now; the close code the server sent, or None if it reset the connection."""
        data = self.received
        try:
            while chunk := self.sock.recv(1 << 20):
                data += chunk
        except OSError:
            pass  # reset: the server aborted a socket it could not even write a close frame to
        finally:
            self.sock.close()
        position = data.index(b"\r\n\r\n") + 4
        while position + 2 <= len(data):
            opcode, length = data[position] & 0x0F, data[position + 1] & 0x7F
            position += 2
            if length >= 126:
                size = 2 if length == 126 else 8
                length = int.from_bytes(data[position : position + size], "big")
                position += size
            if opcode == 0x8 and position + 2 <= len(data):
                return int.from_bytes(data[position : position + 2], "big")
            position += length
        return None


async def cut_count(http: httpx.AsyncClient) -> float:
    metrics = (await http.get("/metrics")).text
    for line in metrics.splitlines():
        if line.startswith('parlour_gateway_sessions_closed_total{code="4000"}'):
            return float(line.split()[-1])
    return 0.0


async def test_a_client_that_stops_reading_is_cut_while_others_get_messages_on_time(
    http: httpx.AsyncClient,
) -> None:
    sender, slow_user, fast_user = [await new_account(http, prefix) for prefix in ("s", "slow", "fast")]
    chat_id = await group_chat(http, sender, [slow_user, fast_user])
    a = await Client.connect(http, sender)
    fast = await Client.connect(http, fast_user)
    slow = await asyncio.to_thread(StalledClient, str(http.base_url), await get_pass(http, slow_user))

    sent_at: dict[str, float] = {}
    received_at: dict[str, float] = {}

    progressed = asyncio.Event()

    async def read_fast() -> None:
        while True:
            frame = await fast.take(lambda f: f["type"] == "message.new")
            received_at[frame["body"]] = time.monotonic()
            progressed.set()

    async def send_window(first: int) -> None:
        client_ids = []
        for n in range(first, first + WINDOW):
            body = f"{n}-{BODY}"
            sent_at[body] = time.monotonic()
            client_ids.append(await a.send_message(chat_id, body))
        for client_id in client_ids:
            await a.expect("message.ack", client_id=client_id)

    reader = asyncio.create_task(read_fast())
    try:
        sent = 0
        while await cut_count(http) == 0:
            assert sent < 3000, "the slow client was never cut"
            await send_window(sent)
            sent += WINDOW
        await send_window(sent)  # and after the cut, messages still flow
        sent += WINDOW

        async with asyncio.timeout(10):
            while len(received_at) < sent:
                await progressed.wait()
                progressed.clear()
        latencies = [received_at[body] - sent_at[body] for body in sent_at]
        assert max(latencies) < ON_TIME, f"the fast reader waited {max(latencies):.2f} s"
        assert await asyncio.to_thread(slow.close_code) in {SLOW_CONSUMER, None}
    finally:
        # Whatever happened, nothing of this test outlives it: the stalled socket, the reader, the clients.
        slow.sock.close()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await a.close()
        await fast.close()
