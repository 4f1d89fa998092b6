"""The basics of the gateway protocol, end to end: hello, ping/pong, error frames."""

from __future__ import annotations

import httpx

from tests.clients import new_account
from tests.ws_client import Client


async def test_a_session_starts_with_hello_and_answers_ping_with_pong(http: httpx.AsyncClient) -> None:
    alice = await new_account(http)
    client = await Client.connect(http, alice)
    assert client.user_id == alice.user_id
    assert client.hello["ping_interval"] == 20.0
    await client.send({"type": "ping", "id": "p1"})
    assert await client.recv() == {"type": "pong", "id": "p1"}
    await client.close()


async def test_bad_frames_get_error_frames_with_codes_and_the_session_stays_open(http: httpx.AsyncClient) -> None:
    client = await Client.connect(http, await new_account(http))
    await client.connection.send("{nope")
    await client.send({"type": "message.steal"})
    await client.send({"type": "message.send", "chat_id": "c", "client_id": "k1"})
    await client.connection.send(b"\x00binary")
    codes = [(await client.recv())["code"] for _ in range(4)]
    assert codes == ["invalid_json", "unknown_type", "invalid_frame", "binary_unsupported"]
    await client.send({"type": "ping"})
    assert await client.recv() == {"type": "pong"}
    await client.close()
