"""`send`: U users in U/2 direct chats, both members sending, at a target rate or flat out.

Measures persisted-and-delivered messages per second (acknowledged to the sender and received by the
other member, counted over the window from the first send to the last delivery), ack latency (send →
`message.ack`) and end-to-end latency (send → the other member's `message.new`).
"""

from __future__ import annotations

from parlour.bench.result import BenchResult
from parlour.bench.scenarios.load import offer_load, share
from parlour.bench.session import ScenarioError, Session, split


def run(session: Session, *, users: int, rate: float | None, duration: float, window: int) -> BenchResult:
    if not session.dialect.server_seq:
        raise ScenarioError("send needs Parlour: the peers have no direct chats, acks or persistence")
    if users < 2 or users % 2:
        raise ScenarioError("send needs an even number of users, at least 2 (they chat in pairs)")
    specs = session.new_specs(users)
    pool = session.start_pool(users)
    try:
        pairs = split([(specs[i], specs[i + 1]) for i in range(0, users, 2)], len(pool))
        groups = [[spec for pair in part for spec in pair] for part in pairs]
        session.provision(pool, groups)
        pool.call("assign", groups)
        session.progress.enter(f"creating {users // 2:,} direct chats")
        answers = pool.call("direct_chats", [[(a.index, b.index) for a, b in part] for part in pairs])
        for part, chat_ids in zip(pairs, answers, strict=True):
            for (a, b), chat_id in zip(part, chat_ids, strict=True):
                for spec in (a, b):
                    spec.chats, spec.sends_to = [chat_id], chat_id
                    session.ledger.member(chat_id, spec.index)
        pool.call("assign", groups)
        session.progress.enter(f"connecting {users:,} clients")
        connected = session.connect(pool, None, resume=True)
        measured = offer_load(
            session, pool, duration=duration, rates=share(rate, [len(g) for g in groups]), window=window, per_ack=1
        )
        pool.call("close")
    finally:
        pool.close()
        session.progress.done()
    verdict = session.ledger.verdict()
    collected = measured.collected
    metrics = {
        "delivered_msgs_per_s": verdict.delivered / measured.delivery_seconds,
        "acked_msgs_per_s": verdict.acked / measured.delivery_seconds,
        "offered_msgs_per_s": verdict.sent / duration,
        "messages": verdict.acked,
        "connect_seconds": (connected.finished_ns - connected.started_ns) / 1e9,
    }
    params = {
        "users": users,
        "rate": rate or "flat out",
        "duration": duration,
        "window": window,
        "workers": len(pool),
        "body_size": session.options.body_size,
    }
    result, _ = session.result(
        params,
        metrics,
        {"ack": collected.ack_latency, "end_to_end": collected.e2e_latency},
        session.saturation(collected, measured.target_cpu),
        collected,
    )
    return result
