"""Supervised background tasks: none dies silently, and closing cancels and awaits them all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class TaskSet:
    """Background tasks of one owner. A task that ends with an exception is logged at ERROR."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start `coro` in the background; the set keeps a strong reference until it ends."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("bus.task_failed", task=task.get_name(), exc_info=error)

    def cancel(self) -> list[asyncio.Task[Any]]:
        """Cancel every task without waiting; returns them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks

    async def cancel_all(self) -> None:
        """Cancel every task and wait until they have all ended."""
        if tasks := self.cancel():
            await asyncio.wait(tasks)

    async def wait(self, at_most: float | None = None) -> bool:
        """Wait up to `at_most` seconds for every task to end; returns whether they all did."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(list(self._tasks), timeout=at_most)
        return not pending

    def __len__(self) -> int:
        return len(self._tasks)


async def every(
    interval: float,
    work: Callable[[], Awaitable[object]],
    *,
    failure: str,
    wake: asyncio.Event | None = None,
) -> None:
    """Run `work` every `interval` seconds, or as soon as `wake` is set, until cancelled (spawn it on a
    `TaskSet`). A failed run is logged at WARNING as the event `failure` and tried again next time: a
    dependency that is down must not end a periodic task."""
    while True:
        if wake is None:
            await asyncio.sleep(interval)
        else:
            try:
                async with asyncio.timeout(interval):
                    await wake.wait()
            except TimeoutError:
                pass
            wake.clear()
        try:
            await work()
        except Exception as error:
            log.warning(failure, error=f"{type(error).__name__}: {error}")
