"""`fanout`: one group of M members, all online; one member sends, every other member receives.

Measures deliveries per second (messages x receiving members, from the first send to the last delivery)
and delivery latency (send → each member's arrival). On a peer, the sender's own echo stands for the ack.
"""

from __future__ import annotations

import asyncio

from parlour.bench import accounts
from parlour.bench.http import HttpClient
from parlour.bench.pool import WorkerPool
from parlour.bench.result import BenchResult
from parlour.bench.scenarios.load import offer_load
from parlour.bench.session import ScenarioError, Session, split

PEER_ROOM = "room"
PROBE_TIMEOUT = 30.0


def run(session: Session, *, members: int, rate: float | None, duration: float, window: int) -> BenchResult:
    if members < 2:
        raise ScenarioError("fanout needs at least 2 members")
    specs = session.new_specs(members)
    pool = session.start_pool(members)
    try:
        groups = split(specs, len(pool))
        session.provision(pool, groups)
        chat_id = _create_group(session, [spec.user_id for spec in specs], specs[0].token)
        for spec in specs:
            spec.chats = [chat_id]
            session.ledger.member(chat_id, spec.index)
        specs[0].sends_to = chat_id
        pool.call("assign", groups)
        session.progress.enter(f"connecting {members:,} members")
        session.connect(pool, None, resume=session.dialect.server_seq)
        if not session.dialect.server_seq:
            _warm_up(session, pool, members)
        rates = [rate if slot == 0 else None for slot in range(len(pool))]
        measured = offer_load(session, pool, duration=duration, rates=rates, window=window, per_ack=members - 1)
        pool.call("close")
    finally:
        pool.close()
        session.progress.done()
    verdict = session.ledger.verdict()
    collected = measured.collected
    metrics = {
        "deliveries_per_s": verdict.delivered / measured.delivery_seconds,
        "messages_per_s": verdict.acked / measured.delivery_seconds,
        "messages": verdict.acked,
        "deliveries": verdict.delivered,
    }
    params = {
        "members": members,
        "rate": rate or "flat out",
        "duration": duration,
        "window": window,
        "workers": len(pool),
        "body_size": session.options.body_size,
    }
    latency = {"delivery": collected.e2e_latency, "ack": collected.ack_latency}
    result, _ = session.result(params, metrics, latency, session.saturation(collected, measured.target_cpu), collected)
    return result


def _create_group(session: Session, member_ids: list[str], owner_token: str) -> str:
    if not session.dialect.server_seq:
        return PEER_ROOM
    session.progress.enter(f"creating a group of {len(member_ids):,}")

    async def create() -> str:
        http = HttpClient(1)
        try:
            return await accounts.create_group_chat(
                http, session.target.endpoints.api, owner_token, "bench fanout", member_ids[1:]
            )
        finally:
            await http.aclose()

    return asyncio.run(create())


def _warm_up(session: Session, pool: WorkerPool, members: int) -> None:
    """Peers: probe until every member has heard one, so no member joins the broadcast set mid-run."""
    session.progress.enter("warming up (probes)")
    for _ in range(int(PROBE_TIMEOUT / 0.2)):
        pool.call("probe")
        if pool.wait_until(lambda totals: totals["probed"] >= members, timeout=0.2):
            return
    raise ScenarioError(f"only {pool.totals()['probed']:,} of {members:,} members heard a probe")
