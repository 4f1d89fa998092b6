"""Request body limits, enforced before and while the body is read (a pure ASGI middleware).

A declared `Content-Length` over the limit is refused before a byte of the body is read; a chunked body
is counted as it streams and refused the moment it passes the limit, so no request can make the process
hold more than its route's limit. The refusal is a 413 problem document with the code `body_too_large`.

The limit of each route class comes from settings; which paths belong to which class is declared in
`ROUTE_CLASSES`, here and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parlour.common.settings import Settings

# The one route whose body is a picture (auth's `PUT`), and the most it may be.
AVATAR_UPLOAD_PATH = "/auth/users/me/avatar"
AVATAR_MAX_BYTES = 2 * 1024 * 1024

BODY_TOO_LARGE = "body_too_large"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Largest request body, in bytes, per route class."""

    default: int  # auth, passes, and anything not named below: small JSON objects
    api: int  # /api/…: message bodies (4,000 characters, escaped) and group member lists
    avatar: int  # a picture upload, as auth's domain bounds it

    @classmethod
    def of(cls, settings: Settings) -> BodyLimits:
        return cls(
            default=settings.http_body_limit_bytes, api=settings.http_api_body_limit_bytes, avatar=AVATAR_MAX_BYTES
        )

    def for_path(self, path: str) -> int:
        for prefix, route_class in ROUTE_CLASSES:
            if path.startswith(prefix):
                limit: int = getattr(self, route_class)
                return limit
        return self.default


# Path prefix -> route class (a field of `BodyLimits`); the first match wins.
ROUTE_CLASSES: tuple[tuple[str, str], ...] = (("/api/", "api"), (AVATAR_UPLOAD_PATH, "avatar"))


class BodyTooLarge(HTTPException):
    """The request body is over its route's limit (rendered by the problem handlers as a 413)."""

    def __init__(self, limit: int) -> None:
        detail = f"The request body is over the limit of {limit} bytes for this route."
        super().__init__(413, detail, headers={"Connection": "close"})
        self.limit = limit


class BodyLimitMiddleware:
    """Refuses request bodies over their route class's limit with 413, before or while they stream."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, BodyTooLarge(limit))
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as error:  # read outside the routes' error handling: answer here
            if started:
                raise
            await _refuse(scope, send, error)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, send: Send, error: BodyTooLarge) -> None:
    body: dict[str, object] = {
        "type": f"urn:parlour:error:{BODY_TOO_LARGE}",
        "title": "Too large",
        "status": 413,
        "code": BODY_TOO_LARGE,
        "detail": error.detail,
        "instance": scope["path"],
    }
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
