"""Coalescing under a storm: 1,000 members of one group, 999 of them connecting at once, against a real
`parlour run` process (embedded mode; the clients run in this process, the server in its own).

The bound: the flusher sends at most one frame per watcher per `FLUSH_SECONDS` (1 s), so a watcher who
sees the storm settle `T` seconds after it began has received at most `T + 2` presence frames after its
snapshot (one per started second, plus the partial seconds at either end); without coalescing it would
receive one per member, 999.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.clients import new_account
from tests.presence import PRESENCE
from tests.processes import free_port, parlour_env, parlour_process
from tests.ws_client import Client, Frame, get_pass, group_chat, ws_url

pytestmark = pytest.mark.slow

MEMBERS = 1_000
CONCURRENCY = 100
SETTLE_WITHIN = 60.0
T = TypeVar("T")


async def _bounded(count: int, make: Callable[[int], Awaitable[T]]) -> list[T]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> T:
        async with gate:
            return await make(index)

    return await asyncio.gather(*(one(index) for index in range(count)))


async def _drained(connection: ClientConnection) -> None:
    # The storm's clients are read and their frames dropped unparsed: only the watcher's count.
    try:
        while True:
            await connection.recv(decode=False)
    except websockets.ConnectionClosed:
        return


async def test_a_thousand_members_coming_online_at_once_reach_a_watcher_in_a_bounded_number_of_frames(
    tmp_path: Path,
) -> None:
    port = free_port()
    unlimited = str(10**6)
    env = parlour_env(
        PARLOUR_DATA_DIR=str(tmp_path / "data"),
        PARLOUR_LOG_LEVEL="WARNING",
        PARLOUR_LOGIN_ATTEMPTS_PER_ADDRESS=unlimited,
        PARLOUR_LOGIN_ATTEMPTS_PER_USERNAME_AND_ADDRESS=unlimited,
    )
    with parlour_process("run", "--port", str(port), env=env, cwd=tmp_path, port=port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            accounts = await _bounded(MEMBERS, lambda i: new_account(http, f"s{i}-"))
            owner, others = accounts[0], accounts[1:]
            await group_chat(http, owner, others, "storm")
            watcher = await Client.connect(http, owner, presence=True)
            everyone = {account.user_id for account in others}
            # The snapshot, or the new chat's frame if the projection was not there yet: all 999 offline.
            await watcher.take(lambda f: f["type"] == PRESENCE and {e["user_id"] for e in f["users"]} == everyone)
            secrets = await _bounded(len(others), lambda i: get_pass(http, others[i]))

            started = time.monotonic()
            storm = asyncio.ensure_future(_storm(str(http.base_url), secrets))
            frames, settled = await _until_all_online(watcher, everyone)
            connections = await storm
            elapsed = settled - started
            bound = math.ceil(elapsed) + 2
            assert len(frames) <= bound, f"{len(frames)} frames in {elapsed:.1f} s: more than {bound}"
            for frame in frames:
                ids = [entry["user_id"] for entry in frame["users"]]
                assert len(ids) == len(set(ids)), "each user at most once in a frame"
                assert owner.user_id not in ids
            drains = [asyncio.ensure_future(_drained(connection)) for connection in connections]
            await watcher.close()
            await asyncio.gather(*(connection.close() for connection in connections))
            await asyncio.gather(*drains)


async def _storm(base_url: str, secrets: list[str]) -> list[ClientConnection]:
    async def connect(index: int) -> ClientConnection:
        return await websockets.connect(ws_url(base_url, secrets[index]), max_size=None, max_queue=4)

    return await _bounded(len(secrets), connect)


async def _until_all_online(watcher: Client, everyone: set[str]) -> tuple[list[Frame], float]:
    online: set[str] = set()
    frames: list[Frame] = []
    async with asyncio.timeout(SETTLE_WITHIN):
        while online != everyone:
            frame = await watcher.take(lambda f: f["type"] == PRESENCE)
            frames.append(frame)
            online.update(e["user_id"] for e in frame["users"] if e["status"] == "online")
    return frames, time.monotonic()
