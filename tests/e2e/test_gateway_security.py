"""Security of the gateway: passes, origins, identity, oversized frames and floods."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from parlour.bootstrap import Overrides
from parlour.common.clock import ManualClock
from tests.clients import assert_problem, new_account
from tests.harness import make_settings, running_parlour
from tests.ws_client import Client, direct_chat, get_pass, refused, ws_url

PASS_REJECTED, ORIGIN_FORBIDDEN, RATE_LIMITED, MESSAGE_TOO_BIG = 4401, 4403, 4029, 1009


@dataclass
class Server:
    http: httpx.AsyncClient
    clock: ManualClock


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """Parlour with a clock the test moves, and a small pass allowance."""
    clock = ManualClock(start=time.time())
    settings = make_settings(tmp_path, passes_per_minute=5, gateway_frame_burst=20)
    async with (
        running_parlour(settings, overrides=Overrides(clock=clock, migrate=True)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        yield Server(http, clock)


async def test_a_pass_is_long_random_and_short_lived(server: Server) -> None:
    alice = await new_account(server.http)
    response = await server.http.post("/gateway/passes", headers=alice.headers)
    assert response.status_code == 201
    body = response.json()
    assert len(body["pass"]) >= 43  # 256 bits in base64url
    assert 0 < body["expires_in"] <= 60


async def test_passes_need_an_access_token(server: Server) -> None:
    assert_problem(await server.http.post("/gateway/passes"), 401, "invalid_token")
    bad = {"Authorization": "Bearer not-a-token"}
    assert_problem(await server.http.post("/gateway/passes", headers=bad), 401, "invalid_token")


async def test_issuing_passes_is_rate_limited_per_user(server: Server) -> None:
    alice, bob = await new_account(server.http, "a"), await new_account(server.http, "b")
    for _ in range(5):
        await get_pass(server.http, alice)
    response = await server.http.post("/gateway/passes", headers=alice.headers)
    assert_problem(response, 429, "too_many_passes")
    assert int(response.headers["Retry-After"]) > 0
    await get_pass(server.http, bob)


async def test_a_missing_or_forged_pass_is_refused_with_4401(server: Server) -> None:
    assert await refused(server.http, None) == (PASS_REJECTED, "pass_invalid")
    assert await refused(server.http, "forged-pass-" + "x" * 31) == (PASS_REJECTED, "pass_invalid")
    assert (await refused(server.http, "x" * 5000))[0] == PASS_REJECTED


async def test_a_pass_works_once(server: Server) -> None:
    alice = await new_account(server.http)
    secret = await get_pass(server.http, alice)
    async with websockets.connect(ws_url(str(server.http.base_url), secret)) as first:
        assert json.loads(await first.recv())["type"] == "hello"
        assert await refused(server.http, secret) == (PASS_REJECTED, "pass_invalid")


async def test_an_expired_pass_is_refused(server: Server) -> None:
    alice = await new_account(server.http)
    secret = await get_pass(server.http, alice)
    server.clock.advance(31)
    assert await refused(server.http, secret) == (PASS_REJECTED, "pass_invalid")


async def test_a_pass_speaks_for_its_user_whatever_else_the_request_claims(server: Server) -> None:
    alice, bob = await new_account(server.http, "a"), await new_account(server.http, "b")
    response = await server.http.post("/gateway/passes", headers=alice.headers, json={"user_id": bob.user_id})
    secret = response.json()["pass"]
    url = ws_url(str(server.http.base_url), secret, user_id=bob.user_id)
    async with websockets.connect(url, additional_headers=bob.headers) as connection:
        hello = json.loads(await connection.recv())
    assert hello["user_id"] == alice.user_id


async def test_a_page_from_another_origin_is_refused_with_4403_before_the_pass_is_spent(server: Server) -> None:
    alice = await new_account(server.http)
    secret = await get_pass(server.http, alice)
    evil = websockets.Origin("http://evil.example")
    assert await refused(server.http, secret, origin=evil) == (ORIGIN_FORBIDDEN, "origin_forbidden")
    own = websockets.Origin(str(server.http.base_url).rstrip("/"))
    async with websockets.connect(ws_url(str(server.http.base_url), secret), origin=own) as connection:
        assert json.loads(await connection.recv())["type"] == "hello"


async def _handshake_close_code(base_url: str, secret: str, host: str, origin: str) -> int:
    """Open the socket by hand with these `Host` and `Origin` headers; the close code the server sends."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(
            f"GET /gateway/ws?pass={secret} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode()
        )
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            opcode, length = await reader.readexactly(2)
            assert opcode == 0x88  # a close frame
            payload = await reader.readexactly(length)
    finally:
        writer.close()
    return int.from_bytes(payload[:2], "big")


async def test_a_dns_rebinding_page_whose_host_matches_its_origin_is_refused(server: Server) -> None:
    alice = await new_account(server.http)
    base_url = str(server.http.base_url).rstrip("/")
    port = urlsplit(base_url).port
    rebound = f"evil.example:{port}"
    secret = await get_pass(server.http, alice)
    assert await _handshake_close_code(base_url, secret, rebound, f"http://{rebound}") == ORIGIN_FORBIDDEN
    own_host = urlsplit(base_url).netloc
    secret = await get_pass(server.http, alice)
    assert await _handshake_close_code(base_url, secret, own_host, f"https://{own_host}") == ORIGIN_FORBIDDEN


async def test_a_frame_claiming_another_sender_is_sent_as_the_connections_user(server: Server) -> None:
    alice, bob = await new_account(server.http, "a"), await new_account(server.http, "b")
    a, b = await Client.connect(server.http, alice), await Client.connect(server.http, bob)
    chat_id = await direct_chat(server.http, alice, bob)
    await a.send({"type": "message.send", "chat_id": chat_id, "client_id": "k", "body": "x", "sender_id": bob.user_id})
    (received,) = await b.messages(chat_id, 1)
    assert received["sender_id"] == alice.user_id
    await a.close()
    await b.close()


async def test_a_1_mib_frame_gets_an_error_and_repeated_ones_close_with_1009(server: Server) -> None:
    client = await Client.connect(server.http, await new_account(server.http))
    huge = json.dumps({"type": "message.send", "chat_id": "c", "client_id": "k", "body": "x" * (1 << 20)})
    await client.connection.send(huge)
    error = await client.recv()
    assert (error["type"], error["code"]) == ("error", "frame_too_large")
    await client.send({"type": "ping"})
    assert await client.recv() == {"type": "pong"}, "one oversized frame does not end the session"
    with contextlib.suppress(websockets.ConnectionClosed):  # the server may cut us off mid-way
        for _ in range(12):
            await client.connection.send(huge)
    assert (await client.closed())[0] == MESSAGE_TOO_BIG


async def test_a_flood_is_cut_with_4029(server: Server) -> None:
    client = await Client.connect(server.http, await new_account(server.http))
    code, reason = await _flood(client)
    assert code == RATE_LIMITED
    assert reason


async def test_others_are_unaffected_by_a_flooder(server: Server) -> None:
    alice, bob, flooder = [await new_account(server.http, prefix) for prefix in ("a", "b", "f")]
    a, b, f = [await Client.connect(server.http, account) for account in (alice, bob, flooder)]
    chat_id = await direct_chat(server.http, alice, bob)
    flood = asyncio.create_task(_flood(f))
    await a.send_message(chat_id, "still here")
    (received,) = await b.messages(chat_id, 1)
    assert received["body"] == "still here"
    assert (await flood)[0] == RATE_LIMITED
    await a.close()
    await b.close()


async def _flood(client: Client) -> tuple[int | None, str]:
    with contextlib.suppress(websockets.ConnectionClosed):  # the server cuts us off mid-way
        for _ in range(500):
            await client.connection.send('{"type":"ping"}')
    return await client.closed()
