"""`connections`: N idle connections (authenticated, on Parlour): how fast they connect, what they cost.

Measures connects per second (pass + WebSocket upgrade, N at up to `connect_concurrency` at a time per
client process), the gateway processes' RSS growth per connection, and their CPU per idle connection per
second over an idle window. On a peer there is no pass: a connect is the upgrade alone. The target's
other processes (distributed: auth, messaging and, with presence, the presence service) are measured
too: their CPU while connecting, and the whole target's idle CPU per connection, so a run with presence
compares with one without on everything the connections cost, not only the gateway's share.
"""

from __future__ import annotations

from parlour.bench.procstat import ProcSample, cpu_usage, sample_all
from parlour.bench.result import BenchResult
from parlour.bench.session import ScenarioError, Session, split
from parlour.bench.stats import LatencyHistogram


def run(session: Session, *, connections: int, idle: float) -> BenchResult:
    if connections < 1:
        raise ScenarioError("connections needs at least 1 connection")
    gateways = {f"gateway-{i}": pid for i, pid in enumerate(session.target.gateway_pids)}
    others = {name: pid for name, pid in session.target.server_pids.items() if pid not in gateways.values()}
    watched = {**gateways, **others}
    specs = session.new_specs(connections)
    pool = session.start_pool(connections)
    try:
        groups = split(specs, len(pool))
        session.provision(pool, groups)
        pool.call("assign", groups)
        before = sample_all(watched)
        pool.call("reset_stats")
        session.progress.enter(f"connecting {connections:,}")
        session.start_profile("connect")
        connected = session.connect(pool, None, resume=False)
        session.finish_profile()
        connecting = session.collect(pool, judge=False)
        connect_cpu = cpu_usage(before, sample_all(watched))
        pool.call("reset_stats")
        settled = sample_all(watched)
        session.progress.enter(f"idle for {idle:g} s")
        session.start_profile("idle")
        pool.wait_until(lambda totals: totals["disconnects"] > 0, timeout=idle)  # the idle window itself
        session.finish_profile()
        after = sample_all(watched)
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
    figures = _process_figures(list(gateways), list(others), (before, settled, after), connections)
    if figures:
        metrics.update(figures)
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


Samples = dict[str, ProcSample]


def _process_figures(
    gateways: list[str], others: list[str], samples: tuple[Samples, Samples, Samples], connections: int
) -> dict[str, float]:
    """Gateway memory and idle CPU per connection, the whole target's idle CPU per connection, and the idle
    CPU of each process that is not a gateway, from samples taken before connecting, at the idle window's
    start and at its end."""
    before, settled, after = samples
    measured = [name for name in gateways if name in before and name in settled and name in after]
    if not measured:
        return {}
    elapsed = max(after[name].at - settled[name].at for name in after if name in settled)
    idle_cpu = {name: after[name].cpu_seconds - settled[name].cpu_seconds for name in after if name in settled}
    idle_pct = cpu_usage(settled, after)
    rss_delta = sum(after[name].rss_bytes - before[name].rss_bytes for name in measured)
    figures = {
        "gateway_rss_delta_mib": rss_delta / 2**20,
        "gateway_kib_per_connection": rss_delta / 1024 / connections,
        "gateway_idle_cpu_us_per_conn_per_s": 1e6 * sum(idle_cpu[name] for name in measured) / connections / elapsed,
        "gateway_idle_cpu_pct": sum(idle_pct[name] for name in measured),
        "target_idle_cpu_us_per_conn_per_s": 1e6 * sum(idle_cpu.values()) / connections / elapsed,
    }
    figures.update({f"{name}_idle_cpu_pct": idle_pct[name] for name in others if name in idle_pct})
    return figures
