"""`parlour bench`, each scenario for a few seconds at small N: the run completes and every check passes.

These check correctness only (nothing lost, duplicated or reordered; the exit status; the result file),
never speed. The embedded target is started once (with presence) and attached to with `--url`, except for
the tests that let `--topology` start their own (one embedded without presence).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from parlour.bench.cli import bench_app
from parlour.bench.target import Target, launch
from tests.services import require

QUIET = ["--no-progress"]


@pytest.fixture(scope="module")
def embedded() -> Iterator[Target]:
    """One `parlour run` started the way the bench starts it, shared by the attaching tests."""
    with launch("embedded") as target:
        yield target


def _bench(tmp_path: Path, *arguments: str) -> dict[str, Any]:
    out = tmp_path / "result.json"
    outcome = CliRunner().invoke(bench_app, [*arguments, *QUIET, "--out", str(out)])
    assert outcome.exit_code == 0, f"{outcome.output}\n{outcome.exception!r}"
    assert "PASSED" in outcome.output
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["correctness"]["ok"], result["correctness"]
    return result


def _attach(target: Target) -> list[str]:
    pids = [argument for pid in target.gateway_pids for argument in ("--gateway-pid", str(pid))]
    return ["--url", target.endpoints.auth, *pids]


def test_send_on_a_started_embedded_target_delivers_every_message_once_in_order(tmp_path: Path) -> None:
    result = _bench(tmp_path, "send", "--topology", "embedded", "--users", "6", "--duration", "1")
    checked = result["correctness"]
    assert checked["acked"] > 0
    assert checked["delivered"] == checked["expected_deliveries"] == checked["acked"]
    assert result["latency_ms"]["ack"]["count"] == checked["acked"]
    assert result["environment"]["target_env"]["PARLOUR_PASSWORD_TIME_COST"] == "1"


def test_send_at_a_target_rate_sends_about_that_many(tmp_path: Path, embedded: Target) -> None:
    result = _bench(tmp_path, "send", *_attach(embedded), "--users", "4", "--rate", "50", "--duration", "1")
    assert 0 < result["correctness"]["sent"] <= 50 * 1 + 1


def test_fanout_reaches_every_member_also_without_batch_frames(tmp_path: Path, embedded: Target) -> None:
    result = _bench(tmp_path, "fanout", *_attach(embedded), "--members", "20", "--duration", "2", "--no-batch")
    checked = result["correctness"]
    assert checked["delivered"] == checked["acked"] * 19 > 0


def test_fanout_with_offline_members_counts_one_webhook_notification_for_each(tmp_path: Path) -> None:
    arguments = ["--topology", "embedded", "--members", "8", "--offline", "3", "--duration", "1"]
    result = _bench(tmp_path, "fanout", *arguments)
    checked, metrics = result["correctness"], result["metrics"]
    assert checked["delivered"] == checked["acked"] * 4 > 0  # the online members but the sender
    assert checked["offline_not_notified"] == 0
    assert metrics["notifications"] == metrics["notifications_distinct"] == 3  # one window: one each
    assert result["params"]["notifications"] == "on"


def test_fanout_without_notifications_leaves_offline_members_out(tmp_path: Path) -> None:
    arguments = ["--topology", "embedded", "--no-notifications", "--members", "6", "--offline", "2"]
    result = _bench(tmp_path, "fanout", *arguments, "--duration", "1")
    assert result["correctness"]["delivered"] == result["correctness"]["acked"] * 3 > 0
    assert "notifications" not in result["metrics"]
    assert result["params"]["notifications"] == "off"


def test_connections_opens_every_connection_and_measures_the_gateway(tmp_path: Path, embedded: Target) -> None:
    result = _bench(tmp_path, "connections", *_attach(embedded), "--connections", "50", "--idle", "1")
    assert result["metrics"]["connections"] == 50
    assert "gateway_kib_per_connection" in result["metrics"]
    assert "target_idle_cpu_us_per_conn_per_s" in result["metrics"]
    assert result["params"]["presence"] == "on (declared)"
    assert result["metrics"]["presence_frames"] > 0  # each session's first presence frame, after `hello`


def test_storm_clients_resume_with_exactly_what_they_missed_also_without_presence(tmp_path: Path) -> None:
    arguments = ["--topology", "embedded", "--no-presence", "--clients", "10", "--messages", "3"]
    result = _bench(tmp_path, "storm", *arguments)
    assert result["metrics"]["missed_messages"] == 30
    assert result["correctness"]["delivered"] == result["correctness"]["expected_deliveries"]
    assert result["target"] == "parlour embedded without presence"
    assert result["params"]["presence"] == "off"
    assert result["metrics"]["presence_frames"] == 0
    assert "presence_settled_s" not in result["metrics"]


def test_storm_with_presence_shows_every_storm_client_online_to_the_observer_in_time(
    tmp_path: Path, embedded: Target
) -> None:
    result = _bench(tmp_path, "storm", *_attach(embedded), "--clients", "10", "--messages", "1", "--presence")
    metrics = result["metrics"]
    assert result["params"]["presence"] == "on (declared)"
    assert result["correctness"]["presence_unsettled"] == 0
    assert metrics["presence_settled_s"] <= metrics["seconds_until_all_live"] + result["params"]["presence_bound_s"]
    assert metrics["observer_presence_frames_since_reconnect"] > 0
    assert metrics["observer_presence_reports"] >= 3 * 10  # each storm client: online, offline, online again
    assert any(note.startswith("presence settled in ") for note in result["notes"])


@pytest.mark.parametrize("peer", ["fastapi-peer", "socketio-peer"])
def test_the_same_fanout_drives_each_peer(tmp_path: Path, peer: str) -> None:
    result = _bench(tmp_path, "fanout", "--topology", peer, "--members", "10", "--duration", "1", "--window", "4")
    assert result["correctness"]["delivered"] == result["correctness"]["acked"] * 9 > 0


def test_a_scenario_a_peer_cannot_serve_is_refused_with_a_reason(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(bench_app, ["storm", "--url", "http://127.0.0.1:9", "--dialect", "fastapi", *QUIET])
    assert outcome.exit_code == 2
    assert "resume" in outcome.output


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.rabbitmq
def test_send_on_a_started_distributed_target_delivers_every_message(tmp_path: Path) -> None:
    for service in ("postgres", "redis", "rabbitmq"):
        require(service)
    result = _bench(tmp_path, "send", "--topology", "distributed", "--users", "6", "--duration", "1")
    assert result["correctness"]["delivered"] == result["correctness"]["acked"] > 0
    assert result["target"].startswith("parlour distributed")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.rabbitmq
def test_storm_on_a_started_distributed_target_with_its_presence_process_settles(tmp_path: Path) -> None:
    for service in ("postgres", "redis", "rabbitmq"):
        require(service)
    result = _bench(tmp_path, "storm", "--topology", "distributed", "--clients", "5", "--messages", "1")
    assert result["params"]["presence"] == "on"
    assert result["correctness"]["presence_unsettled"] == 0
    assert "presence_settled_s" in result["metrics"]
