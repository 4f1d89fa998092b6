"""A running Parlour (embedded wiring) per test, over SQLite and over PostgreSQL; Chromium and its pages for
the web client's tests (each module brings its own `base_url`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from tests.e2e.browser import ChatPage, launched_chromium
from tests.harness import make_settings, running_parlour


@pytest.fixture
async def http(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client against a freshly started Parlour with every service."""
    settings = make_settings(tmp_path, database_url, login_attempts_per_username_and_address=5)
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, launched for one test."""
    async with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
async def people(browser: Browser, base_url: str) -> AsyncIterator[list[ChatPage]]:
    """Open pages, closed at the end (before the server behind `base_url` stops); each must have met no
    page error or console error."""
    opened: list[ChatPage] = []
    yield opened
    problems = [f"{person.username}: {problem}" for person in opened for problem in person.problems]
    for person in opened:
        await person.close()
    assert not problems, problems
