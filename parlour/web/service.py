"""Serves the web client: `index.html` at `/`, the service worker at `/sw.js`, the rest under `/static`.

The client is plain ES modules and CSS, so serving it is three routes and no build. The service worker is
served from the root because a worker's scope cannot reach above its own path: `/sw.js` covers `/`. The index carries a
strict Content-Security-Policy (scripts and styles only from this origin, no inline script), which is the
main defence of the tokens the page holds (docs/web-client.md).
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from parlour.common.service import Infrastructure, ServiceParts

STATIC_DIR = Path(__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # No hashed file names without a build step: the browser revalidates (cheap 304s) instead of guessing.
    "Cache-Control": "no-cache",
}


class ClientFiles(StaticFiles):
    """Static files with the client's security and caching headers."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def web_router(static_dir: Path = STATIC_DIR) -> APIRouter:
    """`GET /` (the page), `GET /sw.js` (the service worker) and `/static/*` (modules, styles, images)."""
    router = APIRouter(tags=["web"])
    index = static_dir / "index.html"
    worker = static_dir / "sw.js"

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    @router.get("/sw.js", include_in_schema=False)
    async def service_worker() -> FileResponse:
        return FileResponse(worker, media_type="text/javascript; charset=utf-8", headers=SECURITY_HEADERS)

    router.mount("/static", ClientFiles(directory=static_dir, check_dir=True), name="web-static")
    return router


async def build_web(infra: Infrastructure, stack: AsyncExitStack) -> ServiceParts:
    """The web client needs no resources: only its routes."""
    return ServiceParts(routers=[web_router()])
