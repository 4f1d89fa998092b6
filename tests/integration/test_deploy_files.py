"""The shipped deployment files, checked by the tools that run them (no container engine here).

hadolint (PyPI, in the test extra) lints the Dockerfile, Debian's `docker-compose config` validates the
compose file, Debian's `promtool` checks the Prometheus configuration and rules, and the compose file is
held to run the same commands as `parlour cluster`. A missing tool skips, or fails under
PARLOUR_TEST_REQUIRE_SERVICES=1 (.ci/run installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed

from parlour.bootstrap import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    """The path of `name` (the virtual environment's bin first), or skip/fail as the services rule says."""
    found = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found:
        return found
    message = f"{name} is not installed (.ci/run installs it)"
    if os.environ.get("PARLOUR_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and PARLOUR_TEST_REQUIRE_SERVICES=1")
    pytest.skip(message)


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def compose() -> dict[str, Any]:
    result = run(tool("docker-compose"), "config")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_the_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "info", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_runs_unprivileged_and_checks_its_health() -> None:
    lines = [line.split() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip()]
    stages = [line for line in lines if line[0] == "FROM"]
    assert len(stages) >= 2
    users = [line[1] for line in lines if line[0] == "USER"]
    assert users, "the image names a user"
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert any(line[0] == "HEALTHCHECK" and "/health" in " ".join(lines[lines.index(line) + 1]) for line in lines)


def test_the_compose_file_is_valid_and_runs_what_parlour_cluster_runs() -> None:
    services = compose()["services"]
    assert {"postgres", "rabbitmq", "redis", "nginx", "prometheus", "grafana", "otel-collector"} <= set(services)
    commands = {name: service.get("command") for name, service in services.items() if service.get("build")}
    assert commands.pop("migrate") == ["migrate"]
    assert sorted(commands.values()) == sorted(["serve", name] for name in SERVICES)
    for name in SERVICES:  # scalable: no fixed name and no host port on a Parlour service
        assert "container_name" not in services[name], name
        assert "ports" not in services[name], name


def test_nginx_in_compose_uses_the_same_site_file_as_parlour_cluster() -> None:
    volumes = compose()["services"]["nginx"]["volumes"]
    mounted = {Path(source).resolve(): target for source, target, *_ in (volume.split(":") for volume in volumes)}
    assert mounted[(DEPLOY / "nginx.conf").resolve()].startswith("/etc/nginx/conf.d/")
    assert "/etc/nginx/parlour/upstreams.conf" in mounted.values()
    assert "/etc/nginx/parlour/listen.conf" in mounted.values()


def test_the_prometheus_configuration_and_alert_rules_pass_promtool() -> None:
    promtool = tool("promtool")
    config = run(promtool, "check", "config", "prometheus.yml", cwd=DEPLOY)
    assert config.returncode == 0, config.stdout + config.stderr
    rules = run(promtool, "check", "rules", "prometheus-rules.yml", cwd=DEPLOY)
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_the_grafana_dashboard_queries_prometheus_in_every_panel() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "parlour.json").read_text())
    panels = dashboard["panels"]
    titles = " ".join(panel["title"] for panel in panels)
    for needed in ("Requests per second", "p95", "p99", "4xx", "5xx", "WebSocket connections"):
        assert needed in titles
    assert all(panel["targets"] and all(target["expr"] for target in panel["targets"]) for panel in panels)


def test_the_filebeat_configuration_decodes_parlours_json_lines_in_place() -> None:
    config = yaml.safe_load((DEPLOY / "filebeat.yml").read_text())
    [parlour] = config["filebeat.inputs"]
    [parser] = [parser["ndjson"] for parser in parlour["parsers"] if "ndjson" in parser]
    assert parser["target"] == ""  # ECS names land at the top level of the document
    assert parser["expand_keys"] is True  # "log.level" becomes {"log": {"level": ...}}
    assert parser["message_key"] == "message"  # the ECS name EcsFields gives structlog's event
    assert "output.elasticsearch" in config
