"""What every scenario does: start workers, provision clients, connect them, collect and judge, report."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from parlour.bench.ledger import DeliveryLedger, Verdict
from parlour.bench.pool import Progress, WorkerPool
from parlour.bench.profiling import Profiler
from parlour.bench.protocol import DIALECTS
from parlour.bench.result import BenchResult
from parlour.bench.stats import LatencyHistogram
from parlour.bench.target import Target
from parlour.bench.worker import ClientSpec, ConnectReport, WorkerPlan, WorkerReport

SATURATED_CPU_PERCENT = 90.0
VERSIONED = ("picows", "websockets", "uvicorn", "fastapi", "msgspec", "python-socketio", "aio-pika", "asyncpg")
_HERE = Path(__file__).resolve().parent  # parlour/bench/, inside the package


class ScenarioError(RuntimeError):
    """The scenario cannot run on this target or with these options; the message says why."""


@dataclass
class Options:
    """Knobs every scenario shares."""

    workers: int | None = None
    clients_per_worker: int = 2_000
    connect_concurrency: int = 64
    body_size: int = 32
    drain_timeout: float = 20.0
    progress: bool = True
    batch: bool = True  # Parlour: receive `batch` frames (?batch=1)
    profile_dir: Path | None = None  # py-spy the target's processes during the measured window
    presence: bool = True  # Parlour: start the presence service (or, with --url, that the target runs it)
    reconnect: bool = False  # chaos: clients reconnect and resume instead of counting a disconnect as failed


@dataclass
class Collected:
    """Every worker's report, merged."""

    ack_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    e2e_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    cpu_percent: list[float] = field(default_factory=list)
    last_arrival_ns: int = 0
    last_ready_ns: int = 0
    errors: list[str] = field(default_factory=list)
    close_codes: Counter[str] = field(default_factory=Counter)
    presence_frames: int = 0  # received by all clients since the workers started
    recovered: LatencyHistogram = field(default_factory=LatencyHistogram)  # reconnecting: lost -> live


class Session:
    """One scenario run against one target."""

    def __init__(self, scenario: str, target: Target, options: Options) -> None:
        self.scenario = scenario
        self.target = target
        self.options = options
        self.progress = Progress(scenario, enabled=options.progress)
        self.ledger = DeliveryLedger()
        self.notes: list[str] = []
        self.violations: dict[str, int] = {}  # checks a scenario adds to the ledger's (presence.VIOLATIONS)
        self.load_average = os.getloadavg()
        self.dialect = DIALECTS[target.dialect]
        self.profile: dict[str, Any] = {}
        self._profiler: Profiler | None = None
        self._profile_phase = ""

    @property
    def presence(self) -> bool:
        """Whether the target runs presence: as the bench started it, or as declared for one attached to."""
        if not self.dialect.server_seq:
            return False
        return self.target.presence if self.target.presence is not None else self.options.presence

    @property
    def notifications(self) -> bool:
        """Whether the bench started the target with the notifications service (attached targets: unknown, no)."""
        return bool(self.dialect.server_seq and self.target.notifications)

    def notifications_label(self) -> str:
        if not self.dialect.server_seq or self.target.notifications is None:
            return "n/a"
        return "on" if self.target.notifications else "off"

    def presence_label(self) -> str:
        if not self.dialect.server_seq:
            return "n/a"
        return ("on" if self.presence else "off") + (" (declared)" if self.target.presence is None else "")

    def start_profile(self, phase: str) -> None:
        """Sample the target's processes until `finish_profile` (with --profile); stacks in DIR/scenario/phase."""
        if self.options.profile_dir is not None and self.target.server_pids:
            directory = self.options.profile_dir / self.scenario / phase
            self._profiler = Profiler(directory, self.target.server_pids)
            self._profile_phase = phase

    def finish_profile(self) -> None:
        if self._profiler is not None:
            for process, summary in self._profiler.finish().items():
                self.profile[f"{self._profile_phase}: {process}"] = summary
            self._profiler = None

    def start_pool(self, clients: int) -> WorkerPool:
        count = self.options.workers or max(1, math.ceil(clients / self.options.clients_per_worker))
        plans = [
            WorkerPlan(
                slot=slot,
                dialect=self.target.dialect,
                endpoints=self.target.endpoints,
                body_size=self.options.body_size,
                connect_concurrency=self.options.connect_concurrency,
                batch=self.options.batch,
                reconnect=self.options.reconnect,
            )
            for slot in range(count)
        ]
        self.progress.enter(f"starting {count} client process(es)")
        return WorkerPool(plans, self.progress)

    def new_specs(self, count: int) -> list[ClientSpec]:
        stamp = f"b{time.time_ns() % 10**12:x}"
        gateways = self.target.endpoints.gateways
        return [ClientSpec(i, f"{stamp}u{i}", gateway=gateways[i % len(gateways)]) for i in range(count)]

    def provision(self, pool: WorkerPool, groups: list[list[ClientSpec]]) -> None:
        """Sign every client up and log it in (Parlour), or name it by its index (peers)."""
        if not self.dialect.authenticated:
            for spec in (spec for group in groups for spec in group):
                spec.user_id = str(spec.index)
            return
        self.progress.enter(f"signing up {sum(map(len, groups)):,} users")
        by_index = {spec.index: spec for group in groups for spec in group}
        for answers in pool.call("provision", groups):
            for index, user_id, token in answers:
                by_index[index].user_id, by_index[index].token = user_id, token

    def connect(self, pool: WorkerPool, indices: list[list[int]] | None, *, resume: bool) -> ConnectReport:
        """Connect clients (all, or `indices` per worker); each is live (and caught up) when this returns."""
        parts: list[list[int] | None] = list(indices) if indices is not None else [None] * len(pool)
        arguments = [{"indices": part, "resumes": resume} for part in parts]
        reports: list[ConnectReport] = pool.call("connect", arguments)
        merged = ConnectReport(
            started_ns=min(r.started_ns for r in reports), finished_ns=max(r.finished_ns for r in reports)
        )
        for report in reports:
            merged.connected += report.connected
            merged.failed += report.failed
            merged.errors += report.errors
            merged.latency.merge(report.latency)
        if merged.failed:
            shown = "\n  ".join(merged.errors[:10])
            raise ScenarioError(
                f"{merged.failed:,} of {merged.failed + merged.connected:,} connects failed:\n  {shown}"
            )
        return merged

    def collect(self, pool: WorkerPool, *, judge: bool = True) -> Collected:
        """Every worker's report, merged; with `judge` (once per run), their ledgers fold into the session's."""
        collected = Collected()
        reports: list[WorkerReport] = pool.call("report")
        for report in reports:
            if judge:
                self.ledger.merge(report.ledger)
            collected.ack_latency.merge(report.ack_latency)
            collected.e2e_latency.merge(report.e2e_latency)
            wall = max(report.wall_seconds, 1e-9)
            busy = report.load_cpu_percent if report.load_cpu_percent is not None else 100 * report.cpu_seconds / wall
            collected.cpu_percent.append(round(busy, 1))
            collected.last_arrival_ns = max(collected.last_arrival_ns, report.last_arrival_ns)
            collected.last_ready_ns = max(collected.last_ready_ns, report.last_ready_ns)
            collected.errors += report.errors
            collected.close_codes.update(report.close_codes)
            collected.recovered.merge(report.recovered)
        collected.presence_frames = pool.totals()["presence"]
        return collected

    def saturation(self, collected: Collected, target_cpu: dict[str, float]) -> dict[str, Any]:
        """Which side ran out of CPU: a client process at ≥ 90 % of a core means the client limited the run."""
        busiest = max(collected.cpu_percent, default=0.0)
        saturated = [f"client-{slot}" for slot, cpu in enumerate(collected.cpu_percent) if cpu >= SATURATED_CPU_PERCENT]
        saturated += [name for name, cpu in target_cpu.items() if cpu >= SATURATED_CPU_PERCENT]
        figures: dict[str, Any] = {"client_cpu_max_pct": busiest, "client_processes": len(collected.cpu_percent)}
        figures.update({f"{name}_cpu_pct": cpu for name, cpu in target_cpu.items()})
        figures["saturated"] = ", ".join(saturated) or "nothing at ≥ 90 % of a core"
        if any(name.startswith("client") for name in saturated):
            self.notes.append("a client process saturated: the figures are a floor for the target, not its limit")
        return figures

    def result(
        self,
        params: dict[str, Any],
        metrics: dict[str, float],
        latency: dict[str, LatencyHistogram],
        saturation: dict[str, Any],
        collected: Collected | None = None,
    ) -> tuple[BenchResult, Verdict]:
        verdict = self.ledger.verdict(at_least_once=self.options.reconnect)
        if collected and collected.errors and not verdict.ok:
            self.notes += collected.errors[:5]
        if collected and collected.close_codes:
            self.notes.append("close codes: " + ", ".join(f"{k} x{v}" for k, v in collected.close_codes.items()))
        if collected and self.dialect.server_seq:
            metrics = {**metrics, "presence_frames": collected.presence_frames}
            self._note_presence(collected.presence_frames)
        correctness = {**verdict.to_dict(), **self.violations}
        correctness["ok"] = verdict.ok and not any(self.violations.values())
        result = BenchResult(
            scenario=self.scenario,
            target=self.target.name,
            params={**params, "presence": self.presence_label(), "notifications": self.notifications_label()},
            metrics={name: round(value, 3) for name, value in metrics.items()},
            latency_ms={name: hist.summary_ms() for name, hist in latency.items() if hist.count},
            correctness=correctness,
            saturation=saturation,
            environment=self.environment(),
            notes=self.notes,
            profile=self.profile,
        )
        return result, verdict

    def _note_presence(self, frames: int) -> None:
        if self.presence and not frames:
            self.notes.append("presence is on, yet no client received a presence frame")
        elif not self.presence and frames:
            self.notes.append(f"presence is off, yet clients received {frames:,} presence frames")

    def environment(self) -> dict[str, Any]:
        versions = {}
        for name in VERSIONED:
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(value, 2) for value in self.load_average],
            "commit": _commit(),
            "versions": versions,
            "target_env": self.target.env,
            "gateway_processes": len(self.target.gateway_pids),
            "phase_seconds": dict(self.progress.timings),
        }


def _commit() -> str:
    """The commit of the code under measurement, when it runs from a git checkout of Parlour."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD", "--show-prefix"],  # noqa: S607
            cwd=_HERE,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    lines = head.stdout.split()  # the prefix and the commit, in git's order
    # An installed wheel may sit inside some other repository: only our own checkout's commit counts.
    if head.returncode != 0 or "parlour/bench/" not in lines or len(lines) != 2:
        return "unknown"
    lines.remove("parlour/bench/")
    return lines[0]


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """`items` in `parts` contiguous runs of nearly equal length."""
    size, extra = divmod(len(items), parts)
    runs, start = [], 0
    for part in range(parts):
        end = start + size + (1 if part < extra else 0)
        runs.append(items[start:end])
        start = end
    return runs
