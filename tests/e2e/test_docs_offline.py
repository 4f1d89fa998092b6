"""`/docs` works without internet: Swagger UI's files come from Parlour itself (parlour/common/http/docs.py)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Route, expect

from tests.e2e.browser import TIMEOUT_MS, launched_chromium
from tests.harness import make_settings, running_parlour

pytestmark = pytest.mark.browser


async def test_the_api_docs_render_their_operations_with_the_network_cut(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}")
    outside: list[str] = []

    async def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort("internetdisconnected")

    async with running_parlour(settings) as base_url, launched_chromium() as browser:
        context = await browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        await context.route("**/*", local_only)
        page = await context.new_page()
        await page.goto(f"{base_url}/docs")
        await expect(page.locator(".opblock-summary-path", has_text="/auth/sessions/refresh")).to_be_visible()
        await expect(page.locator(".opblock-summary-path", has_text="/api/chats").first).to_be_visible()
        await expect(page.get_by_role("heading", name="Parlour")).to_be_visible()
        await context.close()
    assert not outside, f"the page asked the internet for {outside}"


async def test_the_docs_assets_are_served_by_parlour_and_labelled_in_metrics(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}")
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        page = (await http.get("/docs")).text
        assert "cdn." not in page
        assert "/docs/assets/swagger-ui-bundle.js" in page
        script = await http.get("/docs/assets/swagger-ui-bundle.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        metrics = (await http.get("/metrics")).text
        assert 'route="/docs/assets/{path}"' in metrics
