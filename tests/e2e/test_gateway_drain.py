"""Graceful drain: on SIGTERM the gateway closes every session with 1012 before the server stops."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.clients import new_account
from tests.processes import free_port, parlour_env, parlour_process
from tests.ws_client import Client

SERVICE_RESTART = 1012


@pytest.mark.slow
async def test_sigterm_closes_sessions_with_1012_service_restart(tmp_path: Path) -> None:
    port = free_port()
    env = parlour_env(PARLOUR_PORT=str(port), PARLOUR_DATA_DIR=str(tmp_path / "data"))
    with parlour_process("run", env=env, cwd=tmp_path, port=port) as process:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            clients = [await Client.connect(http, await new_account(http, f"d{i}")) for i in range(3)]
            process.send_signal(signal.SIGTERM)
            for client in clients:
                code, reason = await client.closed()
                assert code == SERVICE_RESTART
                assert "restart" in reason  # the gateway's own drain, not the server's bare close
        assert process.wait(15) in {0, -signal.SIGTERM}
