"""Waiting for state that lives outside the test's process (a broker queue, a child process, a browser).

No event crosses those boundaries, so the one honest way to wait is to poll with a deadline. Inside one
process, wait for the event itself instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
DEFAULT_WITHIN = 20.0


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, within: float = DEFAULT_WITHIN, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy, and return that; fail after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                result = await check()
                if result:
                    return result
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"still waiting after {within} s{': ' + what if what else ''}") from None
