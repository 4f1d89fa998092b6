"""A stopping server leaves no connection open behind it, even one whose peer stopped reading."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.types import Receive, Scope, Send

from parlour.common.http.server import ParlourServer
from tests.waiting import eventually

CHUNK = b"x" * 65536


async def endless(scope: Scope, receive: Receive, send: Send) -> None:
    """An answer larger than any buffer: its writes wait for a reader that never comes."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    while True:
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})


async def test_a_connection_whose_peer_stopped_reading_is_aborted_when_the_server_stops() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(endless, loop="none", lifespan="off", log_config=None, timeout_graceful_shutdown=1)
    server = ParlourServer(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))

    async def started() -> bool:
        return bool(server.started)

    await eventually(started, what="the server started")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: parlour\r\n\r\n")
        async with asyncio.timeout(10):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            # This side now reads no more than its own buffer: the server's writes fill the socket and wait.
            server.should_exit = True
            await serving
        # Stopped with this side still not reading: no connection of the server is left open (uvicorn's own
        # shutdown leaves this one closing forever, its buffer full).
        assert not server.server_state.connections
        async with asyncio.timeout(10):  # what was in flight drains, then the server's side is gone
            try:
                while await reader.read(1 << 20):
                    pass
            except ConnectionResetError:
                pass  # aborted: the peer reset the connection
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)
        listener.close()
