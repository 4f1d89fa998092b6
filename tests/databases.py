"""Databases for tests: SQLite files, and PostgreSQL databases created for one test (or one module's
deployment) and dropped after it.

Never one database for the whole run: a running Parlour's schedulers take every row that is due (the
notifications delivery worker, the outbox relay), so in a shared database one test's Parlour would take,
fail and park the rows another test left.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from parlour.common.db import create_engine, migrate
from tests.services import POSTGRES_ADMIN_URL, RUN_ID, require

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _admin_dsn() -> str:
    return POSTGRES_ADMIN_URL


async def _create(name: str) -> None:
    connection = await asyncpg.connect(_admin_dsn())
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop(name: str) -> None:
    connection = await asyncpg.connect(_admin_dsn())
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def postgres_url(database: str) -> str:
    """The SQLAlchemy URL of `database` on the test server."""
    base = _admin_dsn().rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A PostgreSQL database created for the caller and dropped after it; its SQLAlchemy URL."""
    require("postgres")
    name = f"parlour_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create(name))
    try:
        yield postgres_url(name)
    finally:
        asyncio.run(_drop(name))


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_database() -> Iterator[str]:
    """A PostgreSQL database of this module's own, for a deployment that serves every test of a module."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL per backend that no other test shares: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


async def migrate_database(url: str) -> None:
    """Apply every migration to the database at `url`, as `parlour migrate` does."""
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
