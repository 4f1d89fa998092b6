"""SQLite on the event loop's thread (parlour/common/sqlite.py): waiting for the lock and checkpoints stay
off the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from parlour.auth.adapters.sql import SqlAuthUnitOfWork
from parlour.auth.domain.model import User
from parlour.common.db import create_engine, migrate
from parlour.common.sqlite import WalCheckpointer
from tests.waiting import eventually


async def _add_user(engine_url: str, name: str) -> None:
    engine = create_engine(engine_url)
    try:
        async with SqlAuthUnitOfWork(engine) as uow:
            await uow.users.add(User(str(uuid.uuid4()), name, name, datetime.now(UTC)), "hash")
            await uow.commit()
    finally:
        await engine.dispose()


async def test_a_writer_of_another_process_is_waited_for_while_the_loop_keeps_running(tmp_path: Path) -> None:
    database = tmp_path / "inline.db"
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    other_process = sqlite3.connect(database, isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # holds the write lock, as a CLI command would
    writer = asyncio.create_task(_add_user(url, "waiting"))
    ticks = 0
    for _ in range(20):  # the loop runs other work while the writer waits for the lock
        await asyncio.sleep(0.005)
        ticks += 1
    assert ticks == 20
    assert not writer.done()
    other_process.execute("COMMIT")
    async with asyncio.timeout(10):
        await writer
    names = [row[0] for row in other_process.execute("SELECT username FROM auth_users")]
    other_process.close()
    assert names == ["waiting"]


async def test_the_checkpointer_moves_the_wal_into_the_database(tmp_path: Path) -> None:
    database = tmp_path / "checkpoint.db"
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    await migrate(engine)
    try:
        for number in range(20):
            async with SqlAuthUnitOfWork(engine) as uow:
                await uow.users.add(User(str(uuid.uuid4()), f"u{number}", "U", datetime.now(UTC)), "hash")
                await uow.commit()
        assert _users_in_the_database_file(database) < 20  # commits do not checkpoint: the WAL holds them
        checkpoints = asyncio.create_task(WalCheckpointer(database, interval=0.01).run())
        try:

            async def all_moved() -> bool:
                return _users_in_the_database_file(database) == 20

            await eventually(all_moved, within=10, interval=0.01, what="the checkpoint")
        finally:
            checkpoints.cancel()
    finally:
        await engine.dispose()


def _users_in_the_database_file(database: Path) -> int:
    # `immutable=1` reads the database file alone, ignoring the WAL: what a checkpoint has moved there.
    probe = sqlite3.connect(f"file:{database}?immutable=1", uri=True)
    try:
        return int(probe.execute("SELECT count(*) FROM auth_users").fetchone()[0])
    except sqlite3.OperationalError:  # the table itself is still only in the WAL
        return 0
    finally:
        probe.close()
