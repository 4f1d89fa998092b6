"""The SIGTERM hook: drain first, then the handler that was there before (uvicorn's), even when drain fails."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import AsyncExitStack
from types import FrameType

import pytest

from parlour.gateway.infrastructure.signals import drain_before_sigterm


class Previous:
    """Stands in for uvicorn's SIGTERM handler: records each call and wakes the test."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = asyncio.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.calls += 1
        self.called.set()


@pytest.fixture
def previous() -> Iterator[Previous]:
    original = signal.getsignal(signal.SIGTERM)
    handler = Previous()
    signal.signal(signal.SIGTERM, handler)
    yield handler
    signal.signal(signal.SIGTERM, original)


async def test_sigterm_drains_the_gateway_before_the_previous_handler_runs(previous: Previous) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    drained: list[int] = []

    async def drain() -> None:
        started.set()
        await release.wait()
        drained.append(previous.calls)  # how many times uvicorn's handler had run when the drain ended

    async with AsyncExitStack() as stack:
        drain_before_sigterm(drain, stack)
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(started.wait(), 5)
        assert previous.calls == 0  # uvicorn waits while the sessions drain
        release.set()
        await asyncio.wait_for(previous.called.wait(), 5)
    assert drained == [0]
    assert previous.calls == 1


async def test_a_second_sigterm_during_the_drain_stops_waiting(previous: Previous) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def drain() -> None:
        started.set()
        await release.wait()

    async with AsyncExitStack() as stack:
        drain_before_sigterm(drain, stack)
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(started.wait(), 5)
        signal.raise_signal(signal.SIGTERM)
        assert previous.calls == 1  # at once, while the first drain still waits
        release.set()
        await asyncio.wait_for(_calls(previous, 2), 5)


async def test_a_failing_drain_is_logged_and_the_previous_handler_still_runs(
    previous: Previous, capsys: pytest.CaptureFixture[str]
) -> None:
    async def drain() -> None:
        raise RuntimeError("hub broke")

    async with AsyncExitStack() as stack:
        drain_before_sigterm(drain, stack)
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(previous.called.wait(), 5)
    assert "gateway.drain_failed" in capsys.readouterr().out


async def test_the_previous_handler_is_back_when_the_gateway_stops(previous: Previous) -> None:
    async def drain() -> None:
        return None

    async with AsyncExitStack() as stack:
        drain_before_sigterm(drain, stack)
        assert signal.getsignal(signal.SIGTERM) is not previous
    assert signal.getsignal(signal.SIGTERM) is previous


async def test_off_the_main_thread_nothing_is_installed(previous: Previous) -> None:
    async def install() -> None:
        async with AsyncExitStack() as stack:
            drain_before_sigterm(_never, stack)
            assert signal.getsignal(signal.SIGTERM) is previous

    await asyncio.to_thread(asyncio.run, install())


async def _never() -> None:
    raise AssertionError("no drain off the main thread")


async def _calls(previous: Previous, count: int) -> None:
    while previous.calls < count:
        previous.called.clear()
        await previous.called.wait()
