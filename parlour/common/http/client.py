"""The HTTP client one Parlour service calls another with."""

from __future__ import annotations

import httpx

from parlour.common.settings import Settings


def service_http_limits(settings: Settings) -> httpx.Limits:
    """httpx's default pool, except that an idle connection is let go at half the servers' keep-alive
    (`http_keep_alive_seconds`), so no request goes out on a connection the server is closing."""
    return httpx.Limits(
        max_connections=100, max_keepalive_connections=20, keepalive_expiry=settings.http_keep_alive_seconds / 2
    )


def service_http_client(settings: Settings) -> httpx.AsyncClient:
    """The client for calls between services (messaging asking auth, the token verifiers' JWKS)."""
    return httpx.AsyncClient(limits=service_http_limits(settings))
