"""Per-request context: a request id, one log line per request, request metrics, and a span.

A pure ASGI middleware (no response buffering), so it costs little and leaves WebSockets alone. While
tracing is on, each request is a SERVER span, the child of the caller's `traceparent` if it sent one,
named by its route template once routing has found it; its log line carries the span's ids.
"""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parlour.common import tracing
from parlour.common.metrics import Metrics

logger = structlog.get_logger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
_MAX_INCOMING_ID = 64


class RequestContextMiddleware:
    """Binds `request_id` for the request's logs, echoes it back, logs and measures the request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        if tracing.enabled:
            await self._traced(scope, receive, send, request_id)
            return
        await self._served(scope, receive, send, request_id)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        attributes = {"http.request.method": scope["method"], "url.path": scope["path"], "http.request.id": request_id}
        with tracing.tracer().start_as_current_span(
            scope["method"], context=tracing.extract(headers), kind=tracing.SpanKind.SERVER, attributes=attributes
        ) as span:
            status = await self._served(scope, receive, send, request_id)
            route = route_label(scope)
            span.update_name(f"{scope['method']} {route}")
            span.set_attributes({"http.route": route, "http.response.status_code": status})
            if status >= 500:
                span.set_status(tracing.StatusCode.ERROR)

    async def _served(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> int:
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = route_label(scope)
                method = scope["method"]
                self.metrics.http_requests.labels(route, method, str(status)).inc()
                self.metrics.http_latency.labels(route, method).observe(elapsed)
                logger.info(
                    "http request",
                    method=method,
                    path=scope["path"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
        return status


def route_label(scope: Scope) -> str:
    """The route template of a served request, so metrics stay few: an API route's template
    (`/api/chats/{chat_id}`), a mount's prefix (`/static/{path}`), a plain route's path (`/docs`), else
    `unmatched` (a 404 must not mint a label per path)."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    if scope.get("endpoint") is None:
        return "unmatched"
    mounted = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
    if mounted:
        return f"{mounted}/{{path}}"
    return "unmatched" if scope.get("path_params") else str(scope["path"])


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate: str = value.decode("latin-1")
            if 0 < len(candidate) <= _MAX_INCOMING_ID and candidate.isprintable():
                return candidate
    return None
