"""The uvicorn configuration every Parlour process runs with (the CLI and the tests alike)."""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from parlour.common.settings import Settings

# Frames larger than this are refused by the server while still on the wire (close 1009), so no
# connection can make the process buffer more. Smaller frames over the gateway's own limit
# (`gateway_max_frame_bytes`) reach the gateway, which answers them with an `error` frame first.
WIRE_FRAME_LIMIT = 2 * 1024 * 1024


# The collector's first generation is collected after this many new container objects (CPython: 700).
# A chat server allocates frames, events and futures by the million per second while holding one long-
# lived set of sessions: at 700 the young generation was collected thousands of times a second and the
# older ones, which hold every session, over and over (measured in docs/benchmarks.md, "Presence").
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Before serving: what start-up built (modules, the app) moves out of the collector's sight
    (`gc.freeze`), and the young generation is collected less often. Cycles are still collected."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class ParlourServer(uvicorn.Server):
    """uvicorn's server, whose shutdown also aborts the connections that outlived its graceful part.

    uvicorn asks each connection to close and, after `timeout_graceful_shutdown`, cancels their tasks, but
    leaves their sockets: a peer that stopped reading keeps a closing transport (its buffer never drains),
    and a connection accepted while stopping was never asked. Both would stay open until the process ends
    (in a test, past its event loop)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets=sockets)
        lingering = [getattr(connection, "transport", None) for connection in self.server_state.connections]
        for transport in lingering:
            if transport is not None:
                transport.abort()
        if lingering:
            await asyncio.sleep(0)  # their `connection_lost` callbacks run now, while the loop does


def server_config(app: FastAPI, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's configuration for `app`: uvloop, httptools (with a header deadline), websockets sans-I/O."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": header_deadline_protocol(settings.http_header_timeout_seconds),
        "ws": "websockets-sansio",
        "ws_max_size": max(WIRE_FRAME_LIMIT, 2 * settings.gateway_max_frame_bytes),
        # The gateway runs its own keepalive (ping/pong frames it can see); protocol pings would double it.
        "ws_ping_interval": None,
        "log_config": None,
        # Forwarded headers say who the client is (login limits count per address): believed only from
        # the proxies the operator names, never by default (uvicorn's own default trusts loopback).
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "timeout_graceful_shutdown": 10,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def header_deadline_protocol(timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, closing a connection whose request headers take over `timeout` s.

    uvicorn times out idle keep-alive connections, but not a connection that never finishes its headers:
    without this, each half-open socket (connected, silent or mid-header) holds a descriptor for good.
    The deadline starts when the connection opens and when each further request's first byte arrives;
    complete headers (a WebSocket upgrade included) stop it.
    """

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_header_deadline()

        def on_headers_complete(self) -> None:
            self._disarm_header_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            if self._header_deadline is None:
                self._header_deadline = self.loop.call_later(timeout, self._headers_too_slow)

        def _disarm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol
