"""The measured phase shared by `send` and `fanout`: offer load for a while, then drain and collect."""

from __future__ import annotations

import time
from dataclasses import dataclass

from parlour.bench.pool import Totals, WorkerPool
from parlour.bench.procstat import cpu_usage, sample_all
from parlour.bench.session import Collected, Session
from parlour.bench.worker import LoadSpec

START_DELAY = 0.2


@dataclass
class Measured:
    start_ns: int
    duration: float
    target_cpu: dict[str, float]
    drained: bool
    collected: Collected

    @property
    def delivery_seconds(self) -> float:
        """From the first send to the last delivery: the window every delivered message fits in."""
        end = max(self.collected.last_arrival_ns, self.start_ns + int(self.duration * 1e9))
        return (end - self.start_ns) / 1e9


def offer_load(
    session: Session, pool: WorkerPool, *, duration: float, rates: list[float | None], window: int, per_ack: int
) -> Measured:
    """Run the load for `duration` seconds, then wait until every acknowledged message reached every member."""
    pool.call("reset_stats")
    before = sample_all(session.target.server_pids)
    start_ns = time.monotonic_ns() + int(START_DELAY * 1e9)
    pool.call("load", [LoadSpec(start_ns, duration, rate, window) for rate in rates])
    session.start_profile("load")
    session.progress.enter(f"load for {duration:g} s")
    pool.wait_until(lambda _: False, timeout=duration + START_DELAY)  # the measured window itself
    pool.call("stop_load")
    session.finish_profile()
    target_cpu = cpu_usage(before, sample_all(session.target.server_pids))
    session.progress.enter("draining")
    timeout = session.options.drain_timeout

    def drained(totals: Totals) -> bool:
        return totals["acked"] >= totals["sent"] and totals["received"] >= totals["acked"] * per_ack

    complete = pool.wait_until(drained, timeout=timeout * 3, stall=timeout)
    if not complete:
        session.notes.append(f"drain stopped after {timeout:g} s without progress: {pool.totals()}")
    collected = session.collect(pool)
    return Measured(start_ns, duration, target_cpu, complete, collected)


def share(total: float | None, senders_per_worker: list[int]) -> list[float | None]:
    """Each worker's part of a total rate, by its number of senders (None stays flat out)."""
    count = sum(senders_per_worker)
    if total is None or count == 0:
        return [None] * len(senders_per_worker)
    return [total * senders / count for senders in senders_per_worker]
