"""The `parlour` command as a user runs it: a real process, real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest

from tests.clients import PASSWORD, unique_username
from tests.processes import free_port, parlour_env, parlour_process, run_parlour


def test_parlour_run_serves_health_docs_metrics_and_auth(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    args = ("run", "--port", str(port), "--data-dir", str(data_dir))
    with parlour_process(*args, env=parlour_env(), cwd=tmp_path, port=port):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health").json()["ready"] is True
        assert httpx.get(f"{base}/docs").status_code == 200
        assert "parlour_http_requests_total" in httpx.get(f"{base}/metrics").text
        name = unique_username()
        assert httpx.post(f"{base}/auth/users", json={"username": name, "password": PASSWORD}).status_code == 201
    assert (data_dir / "parlour.db").exists()
    assert list((data_dir / "keys").glob("*.pem")), "a signing key is generated on first run"


def test_parlour_run_without_presence_serves_the_rest_and_no_presence(tmp_path: Path) -> None:
    port = free_port()
    args = ("run", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--without", "presence")
    with parlour_process(*args, env=parlour_env(), cwd=tmp_path, port=port):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health").json()["ready"] is True
        assert httpx.get(f"{base}/api/presence/settings").status_code == 404
        assert httpx.get(f"{base}/api/chats").status_code == 401, "messaging is there"
    refused = run_parlour("run", "--without", "nonsense", env=parlour_env(), cwd=tmp_path)
    assert refused.returncode != 0
    assert "presence" in refused.stderr


def test_keys_rotate_adds_a_key_the_running_server_signs_with(tmp_path: Path) -> None:
    port = free_port()
    env = parlour_env(PARLOUR_DATA_DIR=str(tmp_path / "data"))
    with parlour_process("run", "--port", str(port), env=env, cwd=tmp_path, port=port):
        base = f"http://127.0.0.1:{port}"
        name = unique_username()
        httpx.post(f"{base}/auth/users", json={"username": name, "password": PASSWORD})
        rotated = run_parlour("keys", "rotate", env=env, cwd=tmp_path)
        assert rotated.returncode == 0, rotated.stderr
        new_kid = rotated.stdout.split()[3]
        pair = httpx.post(f"{base}/auth/sessions", json={"username": name, "password": PASSWORD}).json()
        assert jwt.get_unverified_header(pair["access_token"])["kid"] == new_kid


@pytest.mark.postgres
def test_migrate_prepares_a_postgresql_database_and_is_idempotent(tmp_path: Path, postgres_database: str) -> None:
    env = parlour_env(PARLOUR_DATABASE_URL=postgres_database)
    for _ in range(2):
        result = run_parlour("migrate", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr


def test_an_unknown_service_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    result = run_parlour("serve", "nonsense", env=parlour_env(), cwd=tmp_path)
    assert result.returncode != 0
    assert "auth" in result.stderr


def test_namespace_retire_deletes_nothing_without_yes(tmp_path: Path) -> None:
    result = run_parlour("namespace", "retire", "--namespace", "nothing-here", env=parlour_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "add --yes" in result.stderr
