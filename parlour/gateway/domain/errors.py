"""Errors of the gateway. Codes are stable (docs/errors.md, "Gateway"; docs/protocol.md).

Unauthenticated
└── PassRejected             pass_invalid       (missing, unknown, expired or already used pass)
Forbidden
└── OriginRefused            origin_forbidden   (the page's Origin is not on the allowlist)
RateLimited
└── TooManyPasses            too_many_passes    (issuing is limited per user)
Unavailable
└── GatewayDraining          gateway_draining   (the process is shutting down: connect elsewhere)

On the WebSocket these become close codes (`CloseCode`), in exactly one place: adapters/websocket.py.
"""

from __future__ import annotations

from parlour.common.errors import Forbidden, RateLimited, Unauthenticated, Unavailable


class PassRejected(Unauthenticated):
    code = "pass_invalid"
    default_message = "The pass is missing, unknown, expired or already used: get a new one from POST /gateway/passes."


class OriginRefused(Forbidden):
    code = "origin_forbidden"
    default_message = "This page's origin may not open a Parlour WebSocket: serve the client from an allowed origin."


class TooManyPasses(RateLimited):
    code = "too_many_passes"
    default_message = "Too many passes requested: reuse the connection you have, or wait."


class GatewayDraining(Unavailable):
    code = "gateway_draining"
    default_message = "This gateway is restarting: reconnect (another gateway will take you)."
