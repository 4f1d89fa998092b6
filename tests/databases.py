"""Databases for tests: SQLite files, and one PostgreSQL database per test run, dropped at the end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run; its SQLAlchemy URL."""
    require("postgres")
    name = f"parlour_test_{RUN_ID}"
    asyncio.run(_create(name))
    try:
        yield postgres_url(name)
    finally:
        asyncio.run(_drop(name))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL per backend: a new SQLite file, or this run's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture(params=BACKENDS)
def own_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL per backend that no other test shares: a new SQLite file, or a PostgreSQL database
    created for this test and dropped after it. For tests of code that takes every row that is due (a
    scheduler), which would take the rows other tests left in the run's shared database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}"
        return
    require("postgres")
    name = f"parlour_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create(name))
    try:
        yield postgres_url(name)
    finally:
        asyncio.run(_drop(name))


async def migrate_database(url: str) -> None:
    """Apply every migration to the database at `url`, as `parlour migrate` does."""
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
