"""Graceful drain on SIGTERM: the gateway closes its sessions before the HTTP server stops.

uvicorn installs its own SIGTERM handler before the application starts; on a signal it stops accepting
and then closes every WebSocket with 1012 at once, dropping frames still buffered in our sessions. This
hook runs first: it drains the hub (close every session with 1012 after its buffered frames are written,
refusing new ones meanwhile) and only then hands the signal to the previous handler. Installed only in
the main thread (signals are delivered there) and removed when the service stops.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import FrameType

import structlog

logger = structlog.get_logger(__name__)


def drain_before_sigterm(drain: Callable[[], Awaitable[None]], stack: AsyncExitStack) -> None:
    """Run `drain` on SIGTERM, then the handler that was there before (uvicorn's)."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    tasks: set[asyncio.Task[None]] = set()

    def chain(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signum)

    async def drain_then_chain(signum: int, frame: FrameType | None) -> None:
        try:
            await drain()
        except Exception:
            logger.exception("gateway.drain_failed")
        finally:
            chain(signum, frame)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if tasks:  # a second SIGTERM: stop waiting
            chain(signum, frame)
            return

        def start() -> None:
            task = loop.create_task(drain_then_chain(signum, frame))
            tasks.add(task)

        loop.call_soon_threadsafe(start)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    stack.callback(restore)
