"""The chaos suite, CI-sized: every fault once under ~100 reconnecting clients, and the Jepsen-style verdict.

`parlour bench chaos` on its own PostgreSQL, RabbitMQ and Redis (the machine's are never touched): two
gateways, two messaging workers and auth; a gateway and a messaging worker are killed -9, RabbitMQ,
PostgreSQL and Redis restarted, two at a time overlapping, while the clients send a few thousand
messages. It must end with no acknowledged message lost, none out of order, no duplicate in any
client's state, every fault recovered. The full-size run is in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from parlour.bench import servers
from parlour.bench.cli import bench_app
from parlour.bench.faults import KINDS

pytestmark = pytest.mark.slow


def _require_private_servers() -> None:
    missing = servers.available()
    if missing is None:
        return
    if os.environ.get("PARLOUR_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"the chaos suite cannot start its servers: {missing}")
    pytest.skip(missing)


def _chaos(tmp_path: Path, *arguments: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "chaos.json"
    argv = ["chaos", "--no-progress", "--out", str(out), "--keep-logs", str(tmp_path / "logs"), *arguments]
    outcome = CliRunner().invoke(bench_app, argv)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    return outcome.exit_code, f"{outcome.output}\n{outcome.exception!r}", result


def test_every_acked_message_reaches_every_member_once_in_order_through_every_fault(tmp_path: Path) -> None:
    _require_private_servers()
    code, output, result = _chaos(
        tmp_path,
        *("--clients", "100", "--messages", "3000", "--rate", "100", "--faults-each", "1"),
        *("--spacing", "5", "--down", "2", "--settle-timeout", "60"),
    )
    assert code == 0, output
    assert "PASSED" in output
    checked = result["correctness"]
    assert checked["ok"], checked
    assert checked["lost"] == checked["out_of_order"] == checked["duplicated"] == 0
    assert checked["seq_gaps"] == checked["seq_conflicts"] == checked["rejected"] == 0
    assert checked["acked"] >= 3000
    assert checked["delivered"] == checked["expected_deliveries"] > checked["acked"]  # groups fan out
    assert checked["reconnects"] > 0  # the faults did cut clients off, and they came back
    assert result["metrics"]["parked_messages"] == 0
    assert result["metrics"]["logged_out_token_refused"] == 1  # Redis restarted empty; the logout held
    timeline = result["timeline"]
    assert sorted(fault["kind"] for fault in timeline) == sorted(KINDS)
    assert all(fault["recovery_seconds"] is not None and not fault["error"] for fault in timeline), timeline


def test_the_private_servers_are_gone_after_the_run(tmp_path: Path) -> None:
    _require_private_servers()
    with servers.private_servers() as started:
        pids = [pid for server in (started.redis, started.postgres, started.rabbitmq) for pid in server.pids()]
        root = started.root
        started.restart("redis")
        assert started.redis.pids()
    assert root.exists() is False
    assert not [pid for pid in pids if _running(pid)]


def _running(pid: int) -> bool:
    """Alive, and not a zombie waiting for its parent (pg_ctl's postmaster is reaped by init a moment later)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status
