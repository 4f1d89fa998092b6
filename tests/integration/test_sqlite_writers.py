"""SQLite has one writer at a time: the writers of one process take turns in arrival order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from parlour.auth.adapters.sql import SqlAuthUnitOfWork
from parlour.auth.domain.model import User
from parlour.common.db import create_engine, migrate


async def test_concurrent_writers_commit_one_at_a_time_first_come_first_served(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}")
    await migrate(engine)
    entered: list[int] = []

    async def write(number: int, started: asyncio.Event) -> None:
        user = User(str(uuid.uuid4()), f"writer{number}", "W", datetime.now(UTC))
        started.set()
        async with SqlAuthUnitOfWork(engine) as uow:
            entered.append(number)
            await uow.users.add(user, "hash")
            await asyncio.sleep(0)  # let the others pile up behind this writer
            await uow.commit()

    try:
        tasks = []
        for number in range(30):
            started = asyncio.Event()
            tasks.append(asyncio.create_task(write(number, started)))
            await started.wait()  # arrival order is creation order
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks)
        assert entered == list(range(30))
        async with SqlAuthUnitOfWork(engine, write=False) as uow:
            assert len(await uow.users.search("writer", 50)) == 30
    finally:
        await engine.dispose()
