"""A running Parlour (embedded wiring) per test, over SQLite and over PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.harness import make_settings, running_parlour


@pytest.fixture
async def http(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client against a freshly started Parlour with every service."""
    settings = make_settings(tmp_path, database_url, login_attempts_per_username_and_address=5)
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client
