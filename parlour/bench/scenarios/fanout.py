"""`fanout`: one group of M members; one member sends, every other online member receives.

Measures deliveries per second (messages x receiving online members, from the first send to the last
delivery) and delivery latency (send → each member's arrival). On a peer, the sender's own echo stands
for the ack. With `offline`, that many members never connect; when the target runs notifications, each
of them has a webhook to the bench's receiver, and the run waits (after the load) until every one of
them was notified, reporting notifications sent, per second, and the members never notified.
"""

from __future__ import annotations

import asyncio
import time

from parlour.bench import accounts
from parlour.bench.http import HttpClient
from parlour.bench.pool import WorkerPool
from parlour.bench.result import BenchResult
from parlour.bench.scenarios.load import offer_load
from parlour.bench.session import ScenarioError, Session, split
from parlour.bench.webhooks import Deliveries, receiver

PEER_ROOM = "room"
PROBE_TIMEOUT = 30.0
NOTIFIED_TIMEOUT = 90.0  # after the load: the notification delay, a window, and the deliveries themselves
WEBHOOKS_IN_FLIGHT = 16


def run(
    session: Session, *, members: int, offline: int, rate: float | None, duration: float, window: int
) -> BenchResult:
    online = members - offline
    if online < 2:
        raise ScenarioError("fanout needs at least 2 online members")
    if offline and not session.dialect.server_seq:
        raise ScenarioError("--offline needs a Parlour target")
    with receiver() as (hooks_url, deliveries):
        specs = session.new_specs(members)
        pool = session.start_pool(online)
        try:
            groups = split(specs, len(pool))
            session.provision(pool, groups)
            chat_id = _create_group(session, [spec.user_id for spec in specs], specs[0].token)
            absent = specs[online:]
            if session.notifications and absent:
                _add_webhooks(session, [(spec.token, f"{hooks_url}/hook/{spec.index}") for spec in absent])
            for spec in specs[:online]:
                spec.chats = [chat_id]
                session.ledger.member(chat_id, spec.index)
            specs[0].sends_to = chat_id
            pool.call("assign", [[spec for spec in group if spec.index < online] for group in groups])
            session.progress.enter(f"connecting {online:,} members")
            session.connect(pool, None, resume=session.dialect.server_seq)
            if not session.dialect.server_seq:
                _warm_up(session, pool, members)
            rates = [rate if slot == 0 else None for slot in range(len(pool))]
            measured = offer_load(session, pool, duration=duration, rates=rates, window=window, per_ack=online - 1)
            pool.call("close")
        finally:
            pool.close()
            session.progress.done()
        notified = _await_notifications(session, deliveries, [spec.index for spec in absent])
    verdict = session.ledger.verdict()
    collected = measured.collected
    metrics = {
        "deliveries_per_s": verdict.delivered / measured.delivery_seconds,
        "messages_per_s": verdict.acked / measured.delivery_seconds,
        "messages": verdict.acked,
        "deliveries": verdict.delivered,
        **notified,
    }
    params = {
        "members": members,
        "offline": offline,
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


def _add_webhooks(session: Session, hooks: list[tuple[str, str]]) -> None:
    """Each offline member registers its webhook (token, URL) with the notifications service."""
    session.progress.enter(f"adding {len(hooks):,} webhooks")
    api = session.target.endpoints.notifications_api

    async def add_all() -> None:
        http, limit = HttpClient(WEBHOOKS_IN_FLIGHT), asyncio.Semaphore(WEBHOOKS_IN_FLIGHT)

        async def one(token: str, url: str) -> None:
            async with limit:
                await accounts.add_webhook(http, api, token, url)

        try:
            await asyncio.gather(*(one(token, url) for token, url in hooks))
        finally:
            await http.aclose()

    asyncio.run(add_all())


def _await_notifications(session: Session, deliveries: Deliveries, absent: list[int]) -> dict[str, float]:
    """With notifications and offline members: wait until each was notified (or time out), then count."""
    if not (session.notifications and absent):
        return {}
    session.progress.enter(f"waiting for {len(absent):,} offline members' notifications")
    deadline = time.monotonic() + NOTIFIED_TIMEOUT
    while deliveries.notified() < len(absent) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling a counter another thread fills; nothing to wait on across the thread
    summary = deliveries.summary(absent)
    session.violations["offline_not_notified"] = int(summary.pop("offline_not_notified"))
    return summary


def _warm_up(session: Session, pool: WorkerPool, members: int) -> None:
    """Peers: probe until every member has heard one, so no member joins the broadcast set mid-run."""
    session.progress.enter("warming up (probes)")
    for _ in range(int(PROBE_TIMEOUT / 0.2)):
        pool.call("probe")
        if pool.wait_until(lambda totals: totals["probed"] >= members, timeout=0.2):
            return
    raise ScenarioError(f"only {pool.totals()['probed']:,} of {members:,} members heard a probe")
