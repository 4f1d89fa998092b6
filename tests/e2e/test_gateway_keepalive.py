"""Keepalive: the server pings; a client that answers stays, one that does not is closed with 4002."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.clients import new_account
from tests.harness import make_settings, running_parlour
from tests.ws_client import Client, get_pass, ws_url

PING_TIMEOUT = 4002


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, gateway_ping_interval_seconds=0.3, gateway_ping_timeout_seconds=0.3)
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


async def pings_until_closed(connection: websockets.ClientConnection) -> tuple[int, int | None]:
    """Read without ever answering; the pings seen and the close code."""
    pings = 0
    try:
        async with asyncio.timeout(10):
            while True:
                pings += json.loads(await connection.recv())["type"] == "ping"
    except websockets.ConnectionClosed as closed:
        return pings, closed.rcvd.code if closed.rcvd else None


async def test_a_client_that_answers_pings_stays_and_a_silent_one_is_closed_with_4002(
    http: httpx.AsyncClient,
) -> None:
    alive = await Client.connect(http, await new_account(http, "alive"))
    assert alive.hello["ping_interval"] == 0.3
    answering = asyncio.create_task(alive.take(lambda frame: False))  # reads on, answering every ping
    silent = await websockets.connect(ws_url(str(http.base_url), await get_pass(http, await new_account(http, "s"))))
    assert await pings_until_closed(silent) == (1, PING_TIMEOUT)
    answering.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await answering
    for _ in range(3):  # the answering client is still open, well past interval + timeout
        await alive.send({"type": "ping", "id": "still-there"})
        await alive.expect("pong", id="still-there")
    await alive.close()
