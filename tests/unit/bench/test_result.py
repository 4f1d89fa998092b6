"""Result files, the terminal table, and `--compare`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from parlour.bench.cli import _execute, bench_app
from parlour.bench.result import BenchResult, compare, fmt, render_comparison, render_table
from parlour.bench.session import Options


def _result(rate: float, p99: float, *, ok: bool = True) -> BenchResult:
    return BenchResult(
        scenario="send",
        target="parlour embedded",
        params={"users": 200},
        metrics={"delivered_msgs_per_s": rate, "messages": 1000},
        latency_ms={"ack": {"count": 1000.0, "p50": 1.0, "p99": p99, "max": 9.0}},
        correctness={"ok": ok, "lost": 0 if ok else 3},
        saturation={"client_cpu_max_pct": 50.0, "saturated": "nothing"},
    )


def test_a_result_survives_its_json_file(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    _result(1000, 5).write(path)
    assert BenchResult.read(path) == _result(1000, 5)


def test_figures_flatten_metrics_latencies_and_numeric_saturation() -> None:
    figures = _result(1000, 5).figures()
    assert figures["metrics.delivered_msgs_per_s"] == 1000
    assert figures["latency_ms.ack.p99"] == 5
    assert figures["saturation.client_cpu_max_pct"] == 50
    assert "saturation.saturated" not in figures


def test_compare_gives_b_over_a_for_every_figure_in_common() -> None:
    rows = {row.name: row for row in compare(_result(1000, 5), _result(2500, 4))}
    assert rows["metrics.delivered_msgs_per_s"].ratio == 2.5
    assert rows["latency_ms.ack.p99"].ratio == 0.8
    assert rows["metrics.messages"].ratio == 1


def test_a_ratio_over_zero_is_not_a_number() -> None:
    rows = {row.name: row for row in compare(_result(0, 5), _result(10, 5))}
    assert math.isnan(rows["metrics.delivered_msgs_per_s"].ratio)
    assert "n/a" in render_comparison(_result(0, 5), _result(10, 5))


def test_the_compare_option_prints_ratios(tmp_path: Path) -> None:
    _result(1000, 5).write(tmp_path / "a.json")
    _result(3000, 5).write(tmp_path / "b.json")
    outcome = CliRunner().invoke(bench_app, ["--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert outcome.exit_code == 0, outcome.output
    line = next(line for line in outcome.output.splitlines() if "delivered_msgs_per_s" in line)
    assert line.split()[-1] == "3.00x"


def test_the_table_says_whether_the_checks_passed_and_shows_every_figure() -> None:
    passed = render_table(_result(1234.5, 5))
    assert "PASSED" in passed
    assert "1,234" in passed or "1,235" in passed
    assert "p99 5" in passed
    assert "FAILED" in render_table(_result(1, 1, ok=False))


def test_figures_are_formatted_for_people() -> None:
    assert fmt(12345.678) == "12,346"
    assert fmt(3) == "3"
    assert fmt(2.345) == "2.35"
    assert fmt(0.01234) == "0.0123"
    assert fmt(float("nan")) == "n/a"
    assert fmt("flat out") == "flat out"


def test_a_failed_check_makes_the_run_exit_non_zero_with_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attach: dict[str, object] = {
        "topology": "embedded",
        "url": "http://127.0.0.1:9",
        "auth_url": None,
        "api_url": None,
        "gateway_url": None,
        "gateway_pid": None,
        "dialect": "parlour",
        "messaging": 1,
        "gateways": 1,
        "log_level": "WARNING",
    }
    out = tmp_path / "failed.json"
    with pytest.raises(typer.Exit) as stopped:
        _execute("send", attach, Options(progress=False), out, lambda _: _result(1, 1, ok=False))
    assert stopped.value.exit_code == 1
    assert "CORRECTNESS FAILED: {'lost': 3}" in capsys.readouterr().err
    assert BenchResult.read(out).correctness["lost"] == 3
