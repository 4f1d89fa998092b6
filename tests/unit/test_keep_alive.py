"""Keep-alive: a server never closes an idle connection at the moment a client reuses it."""

from __future__ import annotations

import httpx

from parlour.common.http.client import service_http_limits
from parlour.common.settings import Settings


def test_servers_keep_an_idle_connection_longer_than_the_clients_that_reuse_it() -> None:
    # A client reuses an idle connection until its own expiry; a server closing it first races that
    # reuse, and the request gets "server disconnected without sending a response".
    httpx_default = httpx.Limits().keepalive_expiry
    assert httpx_default is not None
    assert Settings().http_keep_alive_seconds > httpx_default
    for server_keeps in (2, 5, 75):
        expiry = service_http_limits(Settings(http_keep_alive_seconds=server_keeps)).keepalive_expiry
        assert expiry is not None
        assert expiry < server_keeps
