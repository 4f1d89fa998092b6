"""The bench's lean HTTP/1.1 client against a tiny server of canned answers (a real socket, no framework)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from parlour.bench.http import HttpClient

ANSWERS = [
    b'HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"id":"u1"}',
    b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"a"\r\n4\r\n:12}\r\n0\r\n\r\n',
    b"HTTP/1.1 409 Conflict\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
]


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """Answers each request with the next canned answer; closes after `connection: close`."""
    requests: list[bytes] = []
    answers = iter(ANSWERS * 2)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            requests.append(head + await reader.readexactly(length))
            answer = next(answers)
            writer.write(answer)
            await writer.drain()
            if b"connection: close" in answer:
                break
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield f"http://127.0.0.1:{port}", requests


async def test_json_requests_and_answers_with_length_chunks_and_close(server: tuple[str, list[bytes]]) -> None:
    base, requests = server
    http = HttpClient(1)
    created = await http.post(f"{base}/auth/users", json={"username": "ada"}, headers={"Authorization": "Bearer t"})
    assert (created.status_code, created.json()) == (201, {"id": "u1"})
    chunked = await http.get(f"{base}/api/chats?limit=1")
    assert (chunked.status_code, chunked.json()) == (200, {"a": 12})
    conflict = await http.post(f"{base}/auth/users", json={})
    assert conflict.status_code == 409
    again = await http.get(f"{base}/x")  # the last connection was closed by the server: a new one
    assert again.status_code == 201
    await http.aclose()
    assert requests[0].startswith(b"POST /auth/users HTTP/1.1\r\n")
    assert b"Authorization: Bearer t\r\n" in requests[0]
    assert requests[0].endswith(b'{"username":"ada"}')
    assert requests[1].startswith(b"GET /api/chats?limit=1 HTTP/1.1\r\n")


async def test_an_idle_kept_alive_connection_is_closed_after_its_expiry_and_a_used_one_is_not() -> None:
    closed = asyncio.Event()
    served = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while await reader.read(1 << 16):  # a request (no body); until the client closes the connection
            served += 1
            writer.write(ANSWERS[0])
            await writer.drain()
        closed.set()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    async with listener:
        http = HttpClient(1, idle_expiry=0.2)
        for _ in range(3):  # reused within its expiry: one connection
            assert (await http.get(f"{base}/x")).status_code == 201
        assert not closed.is_set()
        async with asyncio.timeout(5):
            await closed.wait()
        assert served == 3
        await http.aclose()
