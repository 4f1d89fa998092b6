"""`GrowingDelay`: free failures, then a doubling wait with a cap, over the in-memory store."""

from __future__ import annotations

from parlour.common.clock import ManualClock
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.common.ratelimit import GrowingDelay


def _delay(clock: ManualClock, waits: list[float]) -> GrowingDelay:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    kv = InMemoryKeyValueStore(clock)
    return GrowingDelay(kv, prefix="t", free=2, base=0.5, cap=3.0, window=60, sleep=sleep)


def test_the_delay_doubles_after_the_free_failures_up_to_its_cap() -> None:
    delay = _delay(ManualClock(), [])
    assert [delay.delay_after(n) for n in range(7)] == [0, 0, 0, 0.5, 1.0, 2.0, 3.0]
    assert delay.delay_after(10_000) == 3.0


async def test_failures_slow_the_next_attempts_of_that_key_only_until_the_window_ends() -> None:
    clock, waits = ManualClock(), list[float]()
    delay = _delay(clock, waits)
    for _ in range(4):
        await delay.failed("ada")
    assert await delay.wait("ada") == 1.0
    assert await delay.wait("grace") == 0
    clock.advance(61)
    assert await delay.wait("ada") == 0
    assert waits == [1.0]
