"""SQLite for embedded mode, run on the event loop's own thread, and its WAL checkpoints off it.

aiosqlite runs every call (a cursor, an execute, a fetch, a close: four per statement) on a worker thread
and wakes the loop for each answer. Measured here: 128 µs of CPU per `execute` + `fetchall` through it,
1 µs with `sqlite3` directly, so a send batch of ten statements paid ~5 ms of hand-offs whatever its
size. The statements themselves take microseconds (WAL, `synchronous=NORMAL`: a commit does not wait for
the disk), so `InlineSqliteConnection` keeps aiosqlite's API, which SQLAlchemy's `sqlite+aiosqlite` dialect
drives, and runs each call where it is awaited.

What could stall the loop is kept off it:
- waiting for the write lock: the process's writers already take turns (`parlour.common.db`), and a writer
  of another process (a CLI command) is waited for with `await asyncio.sleep`, never SQLite's busy
  handler, which would sleep on the loop;
- checkpoints, which copy the WAL into the database and wait for the disk: connections never checkpoint
  on commit (`wal_autocheckpoint=0`); `WalCheckpointer` runs a passive checkpoint on its own connection in
  a thread, once a second.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

from parlour.common.bus.background import every

logger = structlog.get_logger(__name__)

# How long a statement waits for another process's writer before it fails (SQLite's usual busy timeout).
LOCK_WAIT_SECONDS = 30.0
_LOCK_POLL_FIRST = 0.001
_LOCK_POLL_MAX = 0.05
CHECKPOINT_INTERVAL_SECONDS = 1.0
PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL", "busy_timeout=0", "wal_autocheckpoint=0")


class _InlineCalls:
    """Stands in for aiosqlite's queue to its worker thread: runs each call at once, on this thread."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:
            if future is None:
                raise
            future.set_exception(error)
        else:
            if future is not None:
                future.set_result(result)


class InlineSqliteConnection(aiosqlite.Connection):
    """aiosqlite's connection API with no worker thread: each call runs on the awaiting thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _InlineCalls()  # type: ignore[assignment]  # SQLAlchemy's dialect puts some calls here

    def __await__(self) -> Any:
        return self._connect().__await__()  # no thread to start

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        deadline: float | None = None
        pause = _LOCK_POLL_FIRST
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                # SQLITE_BUSY: the statement did nothing, so it can run again (sqlite.org/rescode.html#busy).
                if not str(error).startswith("database is locked"):
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + LOCK_WAIT_SECONDS
                if now >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LOCK_POLL_MAX)


def inline_connector(database: str) -> Callable[[], Any]:
    """The `async_creator` of an engine on the SQLite file `database`: tuned inline connections."""

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(database, isolation_level=None, check_same_thread=True)
        for pragma in PRAGMAS:
            connection.execute(f"PRAGMA {pragma}")
        return connection

    async def create() -> InlineSqliteConnection:
        connection = InlineSqliteConnection(connect)
        await connection._connect()
        return connection

    return create


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL (None for another database, or one in memory)."""
    if not url.startswith("sqlite"):
        return None
    database = url.split(":///", 1)[-1]
    return Path(database) if database and database != ":memory:" else None


class WalCheckpointer:
    """Moves the WAL into the database file once a second, on its own connection, in a thread."""

    def __init__(self, database: Path, interval: float = CHECKPOINT_INTERVAL_SECONDS) -> None:
        self._database = database
        self._interval = interval
        self._connection: sqlite3.Connection | None = None

    async def run(self) -> None:
        """Checkpoint until cancelled; a failed checkpoint is logged and tried again next time."""
        try:
            # A busy or full disk fails one checkpoint: the WAL grows until the next one passes.
            await every(self._interval, self._checkpoint_in_thread, failure="sqlite.checkpoint_failed")
        finally:
            if self._connection is not None:
                self._connection.close()

    async def _checkpoint_in_thread(self) -> None:
        # Shielded: a cancelled wait must not close the connection under the thread still using it
        # (sqlite3 closing a connection another thread is executing on crashes the process: a SIGTERMed
        # server exited with SIGSEGV in CI).
        checkpoint = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))
        try:
            await asyncio.shield(checkpoint)
        except asyncio.CancelledError:
            await asyncio.wait([checkpoint])
            raise

    def _checkpoint(self) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(self._database, check_same_thread=False, timeout=0)
        # PASSIVE: copies what no reader still needs, never waits for readers or the writer.
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
