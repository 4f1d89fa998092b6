"""Relational storage shared by the services: engines, a UTC timestamp type, and migrations.

SQLite (aiosqlite) in embedded mode, PostgreSQL (asyncpg) in distributed mode. Each service owns its
tables (`<service>/infrastructure/tables.py`) and its Alembic branch
(`<service>/infrastructure/migrations/`); `migrate()` applies every branch.
"""

from __future__ import annotations

import asyncio
import weakref
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from parlour.common.errors import Unavailable
from parlour.common.sqlite import inline_connector, sqlite_file
from parlour.common.unit_of_work import UnitOfWork

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_WRITE_OPTION = "parlour_write"


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite stores no zone, so it is restored on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Values per IN list: a statement binds one variable per value, and SQLite limits them (999 on older builds).
IN_LIST_SLICE = 500

_Value = TypeVar("_Value")


def in_slices(values: Sequence[_Value]) -> Iterator[Sequence[_Value]]:
    """`values` in consecutive slices of at most `IN_LIST_SLICE`: one IN list each."""
    for start in range(0, len(values), IN_LIST_SLICE):
        yield values[start : start + IN_LIST_SLICE]


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine for `url`; SQLite runs on the event loop (parlour/common/sqlite.py), WAL, foreign keys."""
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, async_creator=inline_connector(str(database) if database else ":memory:")
        )
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _begin_sqlite(connection: Connection) -> None:
    # A write transaction takes the write lock up front: a deferred one that reads and then writes fails
    # at once with SQLITE_BUSY when another writer committed in between, whatever the busy timeout.
    immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


async def write_connection(engine: AsyncEngine) -> AsyncConnection:
    """A connection whose transactions will write: on SQLite they take the write lock at BEGIN."""
    connection = await engine.connect()
    return await connection.execution_options(**{_WRITE_OPTION: True})


class SqlUnitOfWork(UnitOfWork):
    """A unit of work on one connection: begun on enter, rolled back on exit unless committed.

    Subclasses build their repositories on the connection in `_attach`. `write=False` opens a plain
    read transaction, which on SQLite runs beside a writer instead of queueing for the write lock.
    """

    def __init__(self, engine: AsyncEngine, *, write: bool = True) -> None:
        self._engine = engine
        self._write = write
        self._connection: AsyncConnection | None = None
        self._turn: asyncio.Lock | None = None

    @abstractmethod
    def _attach(self, connection: AsyncConnection) -> None:
        """Build the repositories on `connection`."""

    async def __aenter__(self) -> Self:
        self._turn = _write_turn(self._engine) if self._write else None
        if self._turn is not None:
            await self._turn.acquire()
        try:
            connection = await (write_connection(self._engine) if self._write else self._engine.connect())
            self._connection = connection
            await connection.begin()
        except BaseException:
            await self._end()
            raise
        self._attach(connection)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._end()

    async def _end(self) -> None:
        try:
            if self._connection is not None:
                try:
                    await self._connection.rollback()
                finally:
                    await self._connection.close()
        finally:
            self._connection = None
            if self._turn is not None:
                self._turn.release()
                self._turn = None

    async def commit(self) -> None:
        assert self._connection is not None
        await self._connection.commit()


# SQLite has one writer at a time, and its busy handler lets waiting writers poll for the lock, so under
# load some wait seconds while others pass again and again. Writers of one process queue for their turn
# here instead, first come first served (asyncio.Lock is FIFO).
_WRITE_TURNS: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _write_turn(engine: AsyncEngine) -> asyncio.Lock | None:
    if engine.dialect.name != "sqlite":
        return None
    return _WRITE_TURNS.setdefault(engine, asyncio.Lock())


async def check_database(engine: AsyncEngine) -> None:
    """Raise `Unavailable` unless the database answers a trivial query (readiness)."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable("The database does not answer.") from exc


def migration_locations() -> list[str]:
    """Every service's Alembic version folder; a new service adds its folder and nothing else."""
    return sorted(str(path) for path in _PACKAGE_ROOT.glob("*/infrastructure/migrations") if path.is_dir())


def alembic_config() -> Config:
    """The Alembic configuration for Parlour's migrations, built in code (no alembic.ini to find)."""
    config = Config()
    config.set_main_option("script_location", str(_PACKAGE_ROOT / "migrations"))
    config.set_main_option("version_locations", " ".join(migration_locations()))
    config.set_main_option("path_separator", "space")
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision of every service's branch."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes may start at once; one migrates, the others wait and find nothing to do.
            await connection.execute(text("SELECT pg_advisory_xact_lock(7419304417)"))
        await connection.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")
