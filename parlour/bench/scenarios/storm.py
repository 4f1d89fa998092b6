"""`storm`: N clients lose their connections at once and come back with `resume`.

N pairs chat directly. Every second member of each pair (the N storm clients) is cut off at once (TCP
abort, no closing handshake); while they are away each partner sends `messages` messages; then all N
reconnect at once, each sending `resume` with the last `seq` it has per chat. Measures the time until
all N are live again (`resume.done`) and until all are caught up (every missed message received), and
checks, across the break, that none was lost, duplicated or reordered. A last live round proves the
resumed connections carry new messages.

With presence on, one more user, the observer, shares a direct chat with every storm client and stays
connected throughout. Before the cut the bench waits until the observer is shown every storm client
online, after it until every one is shown offline; then, from the start of the reconnects, it times
until the observer's last report about every storm client says `online` ("presence settled"). A
client not shown online within the reconnects' duration plus `presence_bound` seconds fails the run
(`presence_unsettled`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from parlour.bench.pool import Totals, WorkerPool
from parlour.bench.presence import PresenceWatch
from parlour.bench.result import BenchResult
from parlour.bench.session import ScenarioError, Session, split
from parlour.bench.worker import ClientSpec

RESUME_PAGE = 500  # messages of one chat in one resume answer (docs/protocol.md); past it the client pages


@dataclass
class _Reconnected:
    """The reconnect phase, in monotonic ns, and what the observer saw around the cut."""

    began: int
    live: int
    caught_up: bool
    expected: int
    dropped: int = 0
    offline: int | None = None  # when the observer was last told of a storm client going offline
    watch: PresenceWatch | None = None


def run(session: Session, *, clients: int, messages: int, presence_bound: float = 2.0) -> BenchResult:
    if not session.dialect.server_seq:
        raise ScenarioError("storm needs Parlour: the peers have no resume")
    if clients < 1:
        raise ScenarioError("storm needs at least 1 client")
    if messages > RESUME_PAGE:
        raise ScenarioError(f"storm resumes in one answer: at most {RESUME_PAGE} missed messages per chat")
    total = 2 * clients + (1 if session.presence else 0)
    specs = session.new_specs(total)
    observer = specs[-1] if session.presence else None
    pool = session.start_pool(total)
    try:
        pairs = split([(specs[i], specs[i + 1]) for i in range(0, 2 * clients, 2)], len(pool))
        stormers = [[b.index for _, b in part] for part in pairs]
        _set_up(session, pool, pairs, observer)
        storm = _storm(session, pool, stormers, messages, observing=observer is not None)
        collected = session.collect(pool, judge=False)
        _round(session, pool, 1, "live after the storm", session.options.drain_timeout)
        if observer is not None:
            storm.watch = _watch(pool)  # read last: a late flap still counts
        session.collect(pool)
        pool.call("close")
    finally:
        pool.close()
        session.progress.done()
    if not storm.caught_up:
        session.notes.append(f"not all missed messages arrived: {pool.totals()} (expected {storm.expected:,} received)")
    storm_seconds = (max(storm.live, collected.last_ready_ns) - storm.began) / 1e9
    metrics = {
        "clients": clients,
        "missed_messages": clients * messages,
        "seconds_until_all_live": storm_seconds,
        "seconds_until_caught_up": (max(collected.last_arrival_ns, storm.live) - storm.began) / 1e9,
        "reconnects_per_s": clients / max((storm.live - storm.began) / 1e9, 1e-9),
    }
    params: dict[str, object] = {
        "clients": clients,
        "messages_each": messages,
        "workers": len(pool),
        "reconnect_concurrency_per_worker": session.options.connect_concurrency,
    }
    if storm.watch is not None:
        metrics.update(_judge_presence(session, storm, storm_seconds, presence_bound))
        params["presence_bound_s"] = presence_bound
    result, _ = session.result(
        params, metrics, {"resumed_delivery": collected.e2e_latency}, session.saturation(collected, {}), collected
    )
    return result


def _set_up(
    session: Session, pool: WorkerPool, pairs: list[list[tuple[ClientSpec, ClientSpec]]], observer: ClientSpec | None
) -> None:
    """Accounts, the pairs' chats (and the observer's), then everyone connected and one live round."""
    groups = [[spec for pair in part for spec in pair] for part in pairs]
    if observer is not None:
        groups[0].append(observer)  # the observer lives in the first worker
    session.provision(pool, groups)
    pool.call("assign", groups)
    answers = pool.call("direct_chats", [[(a.index, b.index) for a, b in part] for part in pairs])
    for part, chat_ids in zip(pairs, answers, strict=True):
        for (a, b), chat_id in zip(part, chat_ids, strict=True):
            a.chats, b.chats, a.sends_to = [chat_id], [chat_id], chat_id
            session.ledger.member(chat_id, a.index)
            session.ledger.member(chat_id, b.index)
    if observer is not None:
        _befriend(session, pool, observer, pairs)
    pool.call("assign", groups)
    session.progress.enter(f"connecting {sum(map(len, groups)):,} clients")
    if observer is not None:  # first, so it hears everyone else come online
        session.connect(pool, [[observer.index]] + [[]] * (len(pool) - 1), resume=False)
    session.connect(pool, [[s.index for s in group if s is not observer] for group in groups], resume=True)
    _round(session, pool, 1, "live before the storm", session.options.drain_timeout)
    if observer is not None:
        _shown(session, pool, len(observer.watches), "before the storm: every storm client shown online")


def _storm(
    session: Session, pool: WorkerPool, stormers: list[list[int]], messages: int, *, observing: bool
) -> _Reconnected:
    """Cut the storm clients, send to them while they are away, and bring them all back with resume."""
    timeout = session.options.drain_timeout
    clients = sum(map(len, stormers))
    session.progress.enter(f"cutting {clients:,} connections")
    dropped = time.monotonic_ns()
    pool.call("drop", stormers)
    pool.call("burst", [messages] * len(pool))
    if not pool.wait_until(lambda t: t["acked"] >= t["sent"], timeout=timeout * 3, stall=timeout):
        raise ScenarioError(f"messages sent while the storm clients were away were not acked: {pool.totals()}")
    offline = None
    if observing and _shown(session, pool, 0, "after the cut: every storm client shown offline"):
        offline = _watch(pool).offline_ns()
    expected = pool.totals()["acked"]
    pool.call("reset_stats")
    session.progress.enter(f"reconnecting {clients:,} clients with resume")
    session.start_profile("reconnect")
    began = time.monotonic_ns()
    session.connect(pool, stormers, resume=True)
    live = time.monotonic_ns()
    caught_up = pool.wait_until(lambda t: t["received"] >= expected, timeout=timeout * 3, stall=timeout)
    if observing:
        session.progress.enter("waiting for presence to settle")
        pool.wait_until(lambda t: t["watched_online"] >= clients, timeout=timeout * 3, stall=timeout)
    session.finish_profile()
    return _Reconnected(began, live, caught_up, expected, dropped, offline)


def _befriend(
    session: Session, pool: WorkerPool, observer: ClientSpec, pairs: list[list[tuple[ClientSpec, ClientSpec]]]
) -> None:
    """Every storm client opens a direct chat with the observer, who then watches them all."""
    session.progress.enter("opening the observer's chats")
    pool.call("chats_with", [(observer.user_id, [b.index for _, b in part]) for part in pairs])
    observer.watches = [b.user_id for part in pairs for _, b in part]


def _shown(session: Session, pool: WorkerPool, online: int, label: str) -> bool:
    """Wait until the observer is shown `online` storm clients online; a note if it is not."""
    timeout = session.options.drain_timeout
    session.progress.enter(label)
    if pool.wait_until(lambda t: t["watched_online"] == online, timeout=timeout * 3, stall=timeout):
        return True
    session.notes.append(f"{label}: not reached ({pool.totals()['watched_online']:,} shown online)")
    return False


def _watch(pool: WorkerPool) -> PresenceWatch:
    watches = [watch for watch in pool.call("presence") if watch is not None]
    if len(watches) != 1:
        raise ScenarioError(f"expected one presence observer, found {len(watches)}")
    watch: PresenceWatch = watches[0]
    return watch


def _judge_presence(session: Session, storm: _Reconnected, storm_seconds: float, bound: float) -> dict[str, float]:
    """The observer's figures, and the check: every storm client shown online within the storm + `bound`."""
    watch = storm.watch
    assert watch is not None
    late = watch.late(storm.began + int((storm_seconds + bound) * 1e9))
    session.violations["presence_unsettled"] = len(late)
    figures: dict[str, float] = {
        "observer_presence_frames": len(watch.frame_ns),
        "observer_presence_frames_since_reconnect": watch.frames_since(storm.began),
        "observer_presence_reports": watch.reports,
    }
    if storm.offline is not None:
        figures["presence_offline_after_cut_s"] = (storm.offline - storm.dropped) / 1e9
    settled_ns = watch.settled_ns(storm.began)
    if settled_ns is None:
        unsettled = watch.unsettled()
        session.notes.append(
            f"presence never settled: {len(unsettled):,} storm clients not shown online at the end "
            f"(storm took {storm_seconds:.2f} s), e.g. {', '.join(unsettled[:3])}"
        )
        return figures
    settled = (settled_ns - storm.began) / 1e9
    figures["presence_settled_s"] = settled
    verdict = "within" if not late else f"{len(late):,} clients later than"
    session.notes.append(
        f"presence settled in {settled:.2f} s (storm took {storm_seconds:.2f} s; {verdict} storm + {bound:g} s)"
    )
    return figures


def _round(session: Session, pool: WorkerPool, count: int, label: str, timeout: float) -> None:
    """Every sender sends `count` messages, and every one must arrive."""
    session.progress.enter(label)
    pool.call("burst", [count] * len(pool))

    def delivered(totals: Totals) -> bool:
        return totals["acked"] >= totals["sent"] and totals["received"] >= totals["acked"]

    if not pool.wait_until(delivered, timeout=timeout * 3, stall=timeout):
        raise ScenarioError(f"{label}: not every message arrived: {pool.totals()}")
