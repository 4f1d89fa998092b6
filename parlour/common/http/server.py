"""The uvicorn configuration every Parlour process runs with (the CLI and the tests alike)."""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from parlour.common.settings import Settings

# Frames larger than this are refused by the server while still on the wire (close 1009), so no
# connection can make the process buffer more. Smaller frames over the gateway's own limit
# (`gateway_max_frame_bytes`) reach the gateway, which answers them with an `error` frame first.
WIRE_FRAME_LIMIT = 2 * 1024 * 1024


def server_config(app: FastAPI, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's configuration for `app`: uvloop, httptools, the websockets sans-I/O protocol."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "websockets-sansio",
        "ws_max_size": max(WIRE_FRAME_LIMIT, 2 * settings.gateway_max_frame_bytes),
        # The gateway runs its own keepalive (ping/pong frames it can see); protocol pings would double it.
        "ws_ping_interval": None,
        "log_config": None,
        # Forwarded headers say who the client is (login limits count per address): believed only from
        # the proxies the operator names, never by default (uvicorn's own default trusts loopback).
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "timeout_graceful_shutdown": 10,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)
