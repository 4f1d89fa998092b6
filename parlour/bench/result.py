"""A run's result: what was measured, what was checked, on what; its JSON file, its table, and comparisons."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class BenchResult:
    """Everything one `parlour bench` run found out."""

    scenario: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    correctness: dict[str, Any] = field(default_factory=dict)
    saturation: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)  # process -> {"self": [(function, %)], "inclusive": …}
    timeline: list[dict[str, Any]] = field(default_factory=list)  # chaos: faults; soak: samples

    @property
    def ok(self) -> bool:
        return bool(self.correctness.get("ok", False))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_json_default)

    def write(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n")

    @classmethod
    def read(cls, path: Path) -> BenchResult:
        data = json.loads(path.read_text())
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def figures(self) -> dict[str, float]:
        """Every numeric figure, flattened: `metrics.x`, `latency_ms.ack.p99`, `saturation.client_cpu_max`."""
        flat: dict[str, float] = {}
        flat.update({f"metrics.{name}": value for name, value in self.metrics.items() if _numeric(value)})
        for name, summary in self.latency_ms.items():
            flat.update({f"latency_ms.{name}.{key}": value for key, value in summary.items() if _numeric(value)})
        flat.update({f"saturation.{name}": value for name, value in self.saturation.items() if _numeric(value)})
        return flat


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_default(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def fmt(value: object) -> str:
    """A figure for a table: thousands separated, three significant decimals at most."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 1 else f"{value:,.2f}"


def render_table(result: BenchResult) -> str:
    """The result as a terminal table."""
    lines = [f"parlour bench {result.scenario} on {result.target}: " + ("PASSED" if result.ok else "FAILED")]
    rows: list[tuple[str, str]] = [(name, fmt(value)) for name, value in result.metrics.items()]
    for name, summary in result.latency_ms.items():
        parts = "  ".join(f"{key} {fmt(summary[key])}" for key in ("p50", "p95", "p99", "max") if key in summary)
        rows.append((f"{name} latency (ms)", f"{parts}  (n={fmt(summary.get('count', 0))})"))
    for name, value in result.saturation.items():
        rows.append((name, fmt(value) if _numeric(value) else str(value)))
    checked = {key: value for key, value in result.correctness.items() if key != "ok"}
    rows.append(("correctness", ", ".join(f"{key} {fmt(value)}" for key, value in checked.items())))
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name.ljust(width)}  {value}" for name, value in rows]
    lines += [f"  note: {note}" for note in result.notes]
    lines += [f"  {_timeline_row(row)}" for row in result.timeline if "kind" in row]
    for process, summary in result.profile.items():
        top = ", ".join(f"{name} {share:g}%" for name, share in summary.get("self", [])[:6])
        lines.append(f"  profile {process} (self time): {top or 'no samples'}")
    return "\n".join(lines)


def _timeline_row(row: dict[str, Any]) -> str:
    """A fault of the chaos timeline: when, what, how long down, how long until the system served again."""
    recovered = f"recovered after {fmt(row['recovery_seconds'])} s" if row.get("recovery_seconds") else "NOT recovered"
    down = f"down {fmt(row['down_seconds'])} s" if row.get("down_seconds") is not None else "not restarted"
    line = f"fault at {row['killed_at']:7.2f} s: {row['kind']:<9} {row['victim']:<12} {down}, {recovered}"
    return line + (f" ({row['error']})" if row.get("error") else "")


@dataclass(frozen=True)
class ComparisonRow:
    name: str
    before: float
    after: float

    @property
    def ratio(self) -> float:
        if self.before == 0 or math.isnan(self.before) or math.isnan(self.after):
            return math.nan
        return self.after / self.before


def compare(before: BenchResult, after: BenchResult) -> list[ComparisonRow]:
    """The figures both results have, side by side (ratio = after / before)."""
    mine, theirs = before.figures(), after.figures()
    return [ComparisonRow(name, mine[name], theirs[name]) for name in mine if name in theirs]


def render_comparison(before: BenchResult, after: BenchResult) -> str:
    """A table of `compare`; a ratio above 1 means B's figure is larger (better for rates, worse for latency)."""
    rows = compare(before, after)
    header = f"A = {before.scenario} on {before.target}    B = {after.scenario} on {after.target}"
    if not rows:
        return header + "\n  (no figure in common)"
    width = max(len(row.name) for row in rows)
    lines = [header, f"  {'figure'.ljust(width)}  {'A':>12}  {'B':>12}  {'B/A':>7}"]
    for row in rows:
        ratio = "n/a" if math.isnan(row.ratio) else f"{row.ratio:.2f}x"
        lines.append(f"  {row.name.ljust(width)}  {fmt(row.before):>12}  {fmt(row.after):>12}  {ratio:>7}")
    return "\n".join(lines)
