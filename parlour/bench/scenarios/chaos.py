"""`chaos`: clients chat through a distributed deployment while its processes and servers are killed.

The target runs on private PostgreSQL, RabbitMQ and Redis servers (parlour/bench/servers.py; the
machine's own are never touched) with two gateways, two messaging workers and auth. Half of the clients
chat in pairs (direct chats), half in groups. They send at a steady rate until `messages` are
acknowledged while parlour/bench/faults.py kills and restarts things; a client whose connection goes
reconnects with backoff and a fresh pass, resumes with its last seqs and sends its unacknowledged
messages again with the same client ids, as the web client does. Then the run waits (bounded) until the
system is quiet: every client live, nothing unacknowledged, no open gap; every client asks once more for
what it missed (the final read), and the ledger judges each client's state (ledger.py, at least once).

PASSED means: 0 acknowledged messages lost, 0 out of order, 0 duplicates in any client's state, no seq
conflict or gap, no message refused, every fault recovered, nothing parked in the dead-letter queue (a
valid command parked by an outage is a message the system gave up on), and a token logged out before the
faults still refused after them (Redis restarts empty).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from typing import Any

import httpx

from parlour.bench.accounts import PASSWORD
from parlour.bench.faults import Schedule
from parlour.bench.pool import WorkerPool
from parlour.bench.procstat import cpu_usage, sample_all
from parlour.bench.result import BenchResult
from parlour.bench.scenarios.load import share
from parlour.bench.servers import PrivateServers
from parlour.bench.session import ScenarioError, Session, split
from parlour.bench.worker import ClientSpec, LoadSpec

FOREVER = 10 * 24 * 3600.0  # the load's duration: it stops when enough is acknowledged
FINAL_READ_TIMEOUT = 60.0


def run(
    session: Session,
    servers: PrivateServers,
    *,
    clients: int,
    messages: int,
    rate: float,
    group_size: int,
    faults_each: int,
    spacing: float,
    down: float,
    settle_timeout: float,
) -> BenchResult:
    if clients < 4:
        raise ScenarioError("chaos needs at least 4 clients (pairs and a group)")
    specs = session.new_specs(clients)
    canary = _logged_out_token(session.target.endpoints.auth)
    pool = session.start_pool(clients)
    try:
        groups = _chats(session, pool, specs, group_size)
        session.progress.enter(f"connecting {clients:,} clients")
        session.connect(pool, None, resume=True)
        pool.call("start_tending")
        before = sample_all(session.target.server_pids)
        load_started = time.monotonic()
        schedule = Schedule(
            session.target, servers, _health_check(pool, clients), faults_each=faults_each, spacing=spacing, down=down
        )
        pool.call("load", [LoadSpec(time.monotonic_ns(), FOREVER, r) for r in share(rate, [len(g) for g in groups])])
        schedule.start()
        session.progress.enter(f"sending until {messages:,} are acked, under {5 * faults_each} faults")
        pool.wait_until(lambda t: t["acked"] >= messages and schedule.done, timeout=FOREVER)
        pool.call("stop_load")
        load_seconds = time.monotonic() - load_started
        target_cpu = cpu_usage(before, sample_all(session.target.server_pids))
        settled, settle_seconds = _settle(session, pool, settle_timeout)
        healed = _final_read(session, pool)
        collected = session.collect(pool)
        pool.call("close")
        parked = servers.rabbitmq.queue_depth(f"{session.target.env['PARLOUR_NAMESPACE']}.parked")
    finally:
        pool.close()
        session.progress.done()
    timeline = schedule.timeline()
    session.notes += [
        f"fault {r['kind']} ({r['victim']}) at {r['killed_at']} s: {r['error']}" for r in timeline if r["error"]
    ]
    if not settled:
        session.notes.append(f"not quiet within {settle_timeout:g} s of the end of the load: {settled}")
    verdict = session.ledger.verdict(at_least_once=True)
    revoked_still = _still_refused(session.target.endpoints.auth, canary)
    if not revoked_still:
        session.notes.append("a token logged out before the faults was accepted again after them")
    metrics: dict[str, float] = {
        "messages_acked": verdict.acked,
        "acked_and_delivered": verdict.delivered,
        "acked_msgs_per_s": verdict.acked / max(load_seconds, 1e-9),
        "load_seconds": load_seconds,
        "settle_seconds": settle_seconds,
        "faults": len(timeline),
        "faults_recovered": sum(1 for r in timeline if r["recovered_at"] is not None),
        "recovery_seconds_max": max((r["recovery_seconds"] or 0 for r in timeline), default=0),
        "healed_by_final_read": healed,
        "parked_messages": parked,
        "logged_out_token_refused": int(revoked_still),
    }
    params = {
        "clients": clients,
        "messages": messages,
        "rate": rate,
        "group_size": group_size,
        "faults_each": faults_each,
        "spacing": spacing,
        "down": down,
        "workers": len(pool),
    }
    result, _ = session.result(
        params,
        metrics,
        {"ack": collected.ack_latency, "end_to_end": collected.e2e_latency, "reconnect": collected.recovered},
        session.saturation(collected, target_cpu),
        collected,
    )
    result.timeline = timeline
    if parked:
        session.notes.append(f"{parked} bus messages parked (dead-lettered): `parlour dlq list` says why")
    if metrics["faults_recovered"] < metrics["faults"] or not settled or parked or not revoked_still:
        result.correctness = {**result.correctness, "ok": False, "faults_unrecovered_unsettled_or_parked": True}
    return result


def _chats(session: Session, pool: WorkerPool, specs: list[ClientSpec], group_size: int) -> list[list[ClientSpec]]:
    """Per worker, its clients: the first half in pairs (direct chats), the rest in groups."""
    parts = split(specs, len(pool))
    session.provision(pool, parts)
    pool.call("assign", parts)
    plans: list[tuple[list[tuple[int, int]], list[list[int]]]] = []
    for part in parts:
        paired = len(part) // 2 - (len(part) // 2) % 2
        pairs = [(part[i].index, part[i + 1].index) for i in range(0, paired, 2)]
        rest = [spec.index for spec in part[paired:]]
        teams = [rest[i : i + group_size] for i in range(0, len(rest), group_size)]
        if len(teams) > 1 and len(teams[-1]) < 2:
            teams[-2] += teams.pop()
        plans.append((pairs, teams))
    session.progress.enter("creating direct and group chats")
    directs = pool.call("direct_chats", [pairs for pairs, _ in plans])
    teams_made = pool.call("group_chats", [teams for _, teams in plans])
    by_index = {spec.index: spec for spec in specs}
    for (pairs, teams), direct_ids, group_ids in zip(plans, directs, teams_made, strict=True):
        members = [([a, b], chat) for (a, b), chat in zip(pairs, direct_ids, strict=True)]
        members += list(zip(teams, group_ids, strict=True))
        for indices, chat_id in members:
            for index in indices:
                spec = by_index[index]
                spec.chats, spec.sends_to = [chat_id], chat_id
                session.ledger.member(chat_id, index)
    pool.call("assign", parts)
    return parts


def _logged_out_token(auth: str) -> str:
    """The access token of a session logged out before the faults (a Redis restart must not revive it)."""
    credentials = {"username": f"canary{uuid.uuid4().hex[:12]}", "password": PASSWORD}
    with httpx.Client(base_url=auth, timeout=30) as http:
        http.post("/auth/users", json=credentials).raise_for_status()
        answer = http.post("/auth/sessions", json=credentials)
        answer.raise_for_status()
        token = str(answer.json()["access_token"])
        http.delete("/auth/sessions/current", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
    return token


def _still_refused(auth: str, token: str) -> bool:
    with httpx.Client(base_url=auth, timeout=30) as http:
        answer = http.get("/auth/users/me", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code == 401


def _health_check(pool: WorkerPool, clients: int) -> Any:
    """Every client live (each lost connection was made again) and acks still coming."""
    samples: deque[tuple[float, int]] = deque(maxlen=64)

    def healthy() -> bool:
        totals = pool.totals()
        now = time.monotonic()
        samples.append((now, totals["acked"]))
        offline = clients + totals["disconnects"] - totals["ready"]
        earlier = [acked for at, acked in samples if now - at >= 1.0]
        return offline <= 0 and bool(earlier) and totals["acked"] > earlier[-1]

    return healthy


def _settle(session: Session, pool: WorkerPool, timeout: float) -> tuple[bool, float]:
    """Wait until every client is live with nothing unacknowledged and no open gap, at most `timeout` s."""
    session.progress.enter("waiting for quiescence")
    began = time.monotonic()
    state: dict[str, int] = {}
    while time.monotonic() - began < timeout:
        state = _state(pool)
        if not (state["offline"] or state["outbox"] or state["gaps"] or state["resuming"]):
            return True, time.monotonic() - began
        time.sleep(0.5)  # polling the workers, bounded by `timeout`
    session.notes.append(f"still unsettled after {timeout:g} s: {state}")
    return False, time.monotonic() - began


def _final_read(session: Session, pool: WorkerPool) -> int:
    """Every client resumes once more; returns how many messages reached a client only this way."""
    session.progress.enter("final read")
    pool.call("resync")
    deadline = time.monotonic() + FINAL_READ_TIMEOUT
    state = _state(pool)
    while state["resuming"] and time.monotonic() < deadline:
        time.sleep(0.2)  # polling the workers, bounded
        state = _state(pool)
    if state["resuming"]:
        session.notes.append(f"final read: {state['resuming']} resumes unanswered after {FINAL_READ_TIMEOUT:g} s")
    if state["healed"]:
        session.notes.append(
            f"{state['healed']} deliveries reached their client only on the final read: lost live without a close"
        )
    return state["healed"]


def _state(pool: WorkerPool) -> dict[str, int]:
    total: dict[str, int] = {}
    for state in pool.call("state"):
        for key, value in state.items():
            total[key] = total.get(key, 0) + value
    return total
