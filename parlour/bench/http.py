"""A lean HTTP/1.1 client for the bench's set-up and pass requests: kept-alive connections, nothing else.

Why not httpx: with tens of requests in flight its connection pool costs milliseconds of client CPU per
request (measured here: ~4 ms), which made the client, not the gateway, the limit of `connections`. This
client speaks just what the bench needs of Parlour's API: JSON requests, `Content-Length` or chunked
responses, keep-alive, and one retry on a fresh connection when a kept-alive one was closed under it.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import msgspec

_encode = msgspec.json.encode
# An idle kept-alive connection is closed after this long, as httpx does: well within the servers' own
# keep-alive (`PARLOUR_HTTP_KEEP_ALIVE_SECONDS`), and soon after a set-up, so a soak's descriptors are flat.
IDLE_EXPIRY_SECONDS = 5.0


class Response:
    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return msgspec.json.decode(self.content)


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Pool:
    """Kept-alive connections to one host:port, at most `size` at once, each closed once idle `expiry` s."""

    def __init__(self, host: str, port: int, size: int, expiry: float) -> None:
        self.host, self.port = host, port
        self.idle: list[_Connection] = []
        self.expiring: dict[_Connection, asyncio.TimerHandle] = {}
        self.slots = asyncio.Semaphore(size)
        self.expiry = expiry

    async def exchange(self, request: bytes) -> Response:
        async with self.slots:
            reused = bool(self.idle)
            connection = self._take() if reused else await asyncio.open_connection(self.host, self.port)
            try:
                response, keep = await _exchange(*connection, request)
            except (ConnectionError, asyncio.IncompleteReadError):
                connection[1].close()
                if not reused:
                    raise
                connection = await asyncio.open_connection(self.host, self.port)
                response, keep = await _exchange(*connection, request)
            if keep:
                self._keep(connection)
            else:
                connection[1].close()
            return response

    def _keep(self, connection: _Connection) -> None:
        self.idle.append(connection)
        self.expiring[connection] = asyncio.get_running_loop().call_later(self.expiry, self._expire, connection)

    def _take(self) -> _Connection:
        connection = self.idle.pop()
        self.expiring.pop(connection).cancel()
        return connection

    def _expire(self, connection: _Connection) -> None:
        self.expiring.pop(connection, None)
        if connection in self.idle:
            self.idle.remove(connection)
            connection[1].close()

    def close(self) -> None:
        for handle in self.expiring.values():
            handle.cancel()
        self.expiring.clear()
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[Response, bool]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Response(status, body), headers.get("connection", "").lower() != "close"


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class HttpClient:
    """POST and GET JSON to any of the target's base URLs, each over its own pool of kept-alive connections."""

    def __init__(self, connections_per_host: int = 32, idle_expiry: float = IDLE_EXPIRY_SECONDS) -> None:
        self.size = connections_per_host
        self.idle_expiry = idle_expiry
        self.pools: dict[tuple[str, int], _Pool] = {}

    async def post(self, url: str, *, json: Any = None, headers: dict[str, str] | None = None) -> Response:
        return await self.request("POST", url, json, headers)

    async def get(self, url: str, *, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", url, None, headers)

    async def request(self, method: str, url: str, json: Any, headers: dict[str, str] | None) -> Response:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        pool = self.pools.get((host, port))
        if pool is None:
            pool = self.pools[(host, port)] = _Pool(host, port, self.size, self.idle_expiry)
        body = _encode(json) if json is not None else b""
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {path or '/'} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
        if json is not None:
            lines.append("Content-Type: application/json")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        return await pool.exchange(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    async def aclose(self) -> None:
        for pool in self.pools.values():
            pool.close()
