"""`storm`: N clients lose their connections at once and come back with `resume`.

N pairs chat directly. Every second member of each pair (the N storm clients) is cut off at once (TCP
abort, no closing handshake); while they are away each partner sends `messages` messages; then all N
reconnect at once, each sending `resume` with the last `seq` it has per chat. Measures the time until
all N are live again (`resume.done`) and until all are caught up (every missed message received), and
checks, across the break, that none was lost, duplicated or reordered. A last live round proves the
resumed connections carry new messages.
"""

from __future__ import annotations

import time

from parlour.bench.pool import Totals, WorkerPool
from parlour.bench.result import BenchResult
from parlour.bench.session import ScenarioError, Session, split

RESUME_PAGE = 500  # messages of one chat in one resume answer (docs/protocol.md); past it the client pages


def run(session: Session, *, clients: int, messages: int) -> BenchResult:
    if not session.dialect.server_seq:
        raise ScenarioError("storm needs Parlour: the peers have no resume")
    if clients < 1:
        raise ScenarioError("storm needs at least 1 client")
    if messages > RESUME_PAGE:
        raise ScenarioError(f"storm resumes in one answer: at most {RESUME_PAGE} missed messages per chat")
    specs = session.new_specs(2 * clients)
    pool = session.start_pool(2 * clients)
    timeout = session.options.drain_timeout
    try:
        pairs = split([(specs[i], specs[i + 1]) for i in range(0, 2 * clients, 2)], len(pool))
        groups = [[spec for pair in part for spec in pair] for part in pairs]
        session.provision(pool, groups)
        pool.call("assign", groups)
        answers = pool.call("direct_chats", [[(a.index, b.index) for a, b in part] for part in pairs])
        for part, chat_ids in zip(pairs, answers, strict=True):
            for (a, b), chat_id in zip(part, chat_ids, strict=True):
                a.chats, b.chats, a.sends_to = [chat_id], [chat_id], chat_id
                session.ledger.member(chat_id, a.index)
                session.ledger.member(chat_id, b.index)
        pool.call("assign", groups)
        session.progress.enter(f"connecting {2 * clients:,} clients")
        session.connect(pool, None, resume=True)
        _round(session, pool, 1, "live before the storm", timeout)
        stormers = [[b.index for _, b in part] for part in pairs]
        session.progress.enter(f"cutting {clients:,} connections")
        pool.call("drop", stormers)
        pool.call("burst", [messages] * len(pool))
        if not pool.wait_until(lambda t: t["acked"] >= t["sent"], timeout=timeout * 3, stall=timeout):
            raise ScenarioError(f"messages sent while the storm clients were away were not acked: {pool.totals()}")
        expected = pool.totals()["acked"]
        pool.call("reset_stats")
        session.progress.enter(f"reconnecting {clients:,} clients with resume")
        session.start_profile("reconnect")
        began = time.monotonic_ns()
        session.connect(pool, stormers, resume=True)
        live_ns = time.monotonic_ns()
        caught_up = pool.wait_until(lambda t: t["received"] >= expected, timeout=timeout * 3, stall=timeout)
        session.finish_profile()
        collected = session.collect(pool, judge=False)
        _round(session, pool, 1, "live after the storm", timeout)
        session.collect(pool)
        pool.call("close")
    finally:
        pool.close()
        session.progress.done()
    if not caught_up:
        session.notes.append(f"not all missed messages arrived: {pool.totals()} (expected {expected:,} received)")
    metrics = {
        "clients": clients,
        "missed_messages": clients * messages,
        "seconds_until_all_live": (max(live_ns, collected.last_ready_ns) - began) / 1e9,
        "seconds_until_caught_up": (max(collected.last_arrival_ns, live_ns) - began) / 1e9,
        "reconnects_per_s": clients / max((live_ns - began) / 1e9, 1e-9),
    }
    params = {
        "clients": clients,
        "messages_each": messages,
        "workers": len(pool),
        "reconnect_concurrency_per_worker": session.options.connect_concurrency,
    }
    result, _ = session.result(
        params, metrics, {"resumed_delivery": collected.e2e_latency}, session.saturation(collected, {}), collected
    )
    return result


def _round(session: Session, pool: WorkerPool, count: int, label: str, timeout: float) -> None:
    """Every sender sends `count` messages, and every one must arrive."""
    session.progress.enter(label)
    pool.call("burst", [count] * len(pool))

    def delivered(totals: Totals) -> bool:
        return totals["acked"] >= totals["sent"] and totals["received"] >= totals["acked"]

    if not pool.wait_until(delivered, timeout=timeout * 3, stall=timeout):
        raise ScenarioError(f"{label}: not every message arrived: {pool.totals()}")
