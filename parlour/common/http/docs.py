"""`/docs`: Swagger UI from files this process serves itself, so the page works without internet.

The assets come from the `swagger-ui-bundle-v2` package (Swagger UI's own dist files, Apache-2.0), served
under `/docs/assets`; FastAPI's page would load them from a CDN. The page carries a Content-Security-Policy
that allows only this origin and its inline script (`docs_policy`).
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from parlour.common.http.headers import docs_policy

ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
ASSETS_URL = "/docs/assets"


def docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """`GET /docs` (the page), `GET /docs/oauth2-redirect`, and `/docs/assets/*` (Swagger UI's files)."""
    router = APIRouter(include_in_schema=False)

    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        oauth2_redirect_url="/docs/oauth2-redirect",
    )
    html = bytes(page.body).decode()
    headers = {"Content-Security-Policy": docs_policy(html), "Referrer-Policy": "no-referrer"}

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    @router.get("/docs/oauth2-redirect")
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    router.mount(ASSETS_URL, StaticFiles(directory=ASSETS, check_dir=True), name="docs-assets")
    return router
