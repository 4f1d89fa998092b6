"""Security headers on every HTTP answer, and the API docs page with its own Content-Security-Policy.

`SecurityHeadersMiddleware` (pure ASGI) adds `X-Content-Type-Options: nosniff` to every response that
does not set it, so no browser guesses a JSON or problem answer to be HTML. The docs page (`/docs`,
Swagger UI from its CDN) gets a CSP that allows that CDN's script and style, its one inline script by
hash, and requests to this origin only; nothing may frame it.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PATH = "/docs"
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class SecurityHeadersMiddleware:
    """Adds `X-Content-Type-Options: nosniff` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == _NOSNIFF[0] for name, _ in headers):
                    headers.append(_NOSNIFF)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def docs_policy(html: str) -> str:
    """The CSP of the docs page `html`: its CDN, its inline scripts by hash, this origin for the API."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_CDN} {' '.join(hashes)}",
            f"style-src {_CDN}",
            "img-src https://fastapi.tiangolo.com data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """`GET /docs`: Swagger UI for the OpenAPI document, under its Content-Security-Policy."""
    router = APIRouter()
    html = bytes(get_swagger_ui_html(openapi_url=openapi_url, title=f"{title} - docs").body).decode()
    headers = {"Content-Security-Policy": docs_policy(html), "Referrer-Policy": "no-referrer"}

    @router.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    return router
