"""`connections`: N idle connections (authenticated, on Parlour): how fast they connect, what they cost.

Measures connects per second (pass + WebSocket upgrade, N at up to `connect_concurrency` at a time per
client process), the gateway processes' RSS growth per connection, and their CPU per idle connection per
second over an idle window. On a peer there is no pass: a connect is the upgrade alone.
"""

from __future__ import annotations

from parlour.bench.procstat import cpu_usage, sample_all
from parlour.bench.result import BenchResult
from parlour.bench.session import ScenarioError, Session, split
from parlour.bench.stats import LatencyHistogram


def run(session: Session, *, connections: int, idle: float) -> BenchResult:
    if connections < 1:
        raise ScenarioError("connections needs at least 1 connection")
    gateways = {f"gateway-{i}": pid for i, pid in enumerate(session.target.gateway_pids)}
    specs = session.new_specs(connections)
    pool = session.start_pool(connections)
    try:
        groups = split(specs, len(pool))
        session.provision(pool, groups)
        pool.call("assign", groups)
        before = sample_all(gateways)
        pool.call("reset_stats")
        session.progress.enter(f"connecting {connections:,}")
        session.start_profile("connect")
        connected = session.connect(pool, None, resume=False)
        session.finish_profile()
        connecting = session.collect(pool, judge=False)
        connect_cpu = cpu_usage(before, sample_all(gateways))
        pool.call("reset_stats")
        settled = sample_all(gateways)
        session.progress.enter(f"idle for {idle:g} s")
        session.start_profile("idle")
        pool.wait_until(lambda totals: totals["disconnects"] > 0, timeout=idle)  # the idle window itself
        session.finish_profile()
        after = sample_all(gateways)
        collected = session.collect(pool)
        pool.call("close")
    finally:
        pool.close()
        session.progress.done()
    connect_seconds = (connected.finished_ns - connected.started_ns) / 1e9
    metrics: dict[str, float] = {
        "connections": connected.connected,
        "connects_per_s": connected.connected / connect_seconds if connect_seconds else 0.0,
    }
    if before and after:
        rss_delta = sum(after[name].rss_bytes - before[name].rss_bytes for name in after if name in before)
        idle_cpu = sum(after[name].cpu_seconds - settled[name].cpu_seconds for name in after if name in settled)
        elapsed = max(after[name].at - settled[name].at for name in after if name in settled)
        metrics["gateway_rss_delta_mib"] = rss_delta / 2**20
        metrics["gateway_kib_per_connection"] = rss_delta / 1024 / connections
        metrics["gateway_idle_cpu_us_per_conn_per_s"] = 1e6 * idle_cpu / connections / elapsed
        metrics["gateway_idle_cpu_pct"] = sum(cpu_usage(settled, after).values())
    else:
        session.notes.append("no gateway process to watch (attach with --gateway-pid): no memory or CPU figures")
    params = {
        "connections": connections,
        "idle": idle,
        "workers": len(pool),
        "connect_concurrency_per_worker": session.options.connect_concurrency,
    }
    latency: dict[str, LatencyHistogram] = {"connect": connected.latency}
    saturation = session.saturation(connecting, {f"{name}_while_connecting": cpu for name, cpu in connect_cpu.items()})
    result, _ = session.result(params, metrics, latency, saturation, collected)
    return result
