"""Schemathesis against the OpenAPI of a running Parlour: every check, authenticated.

The server runs in the test (embedded, SQLite); `st run` fuzzes it from a subprocess, as any client
would. Then a healthy client still chats, and the server logged no traceback. Logging out is left out
of the run: it would revoke the very token the fuzzer authenticates with.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from parlour.common.settings import Settings
from tests.clients import new_account
from tests.harness import logged_problems, make_settings, running_parlour

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = shutil.which("st", path=str(Path(sys.executable).parent))
MAX_EXAMPLES = 15
TIMEOUT = 600


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (pip install -e '.[test]')")
async def test_every_schemathesis_check_passes_and_the_server_stays_healthy(tmp_path: Path) -> None:
    unlimited = 10**6
    settings = make_settings(
        tmp_path / "server",
        None,
        login_attempts_per_address=unlimited,
        login_attempts_per_username_and_address=unlimited,
        login_failures_before_delay=unlimited,
        passes_per_minute=unlimited,
    )
    with logged_problems() as problems:
        await _fuzz_then_chat(settings, tmp_path)
    assert problems.seen == []


async def _fuzz_then_chat(settings: Settings, tmp_path: Path) -> None:
    assert SCHEMATHESIS is not None
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=20) as http:
        fuzzer = await new_account(http, "fuzz")
        process = await asyncio.create_subprocess_exec(
            SCHEMATHESIS,
            "--config-file",
            str(CONFIG),
            "run",
            f"{base_url}/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {fuzzer.access_token}",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "14",
            # What ends the fuzzer's own session would leave every later request a 401: logging out, and
            # ending a session by id (the stateful phase feeds it the id `GET /auth/sessions` lists).
            "--exclude-operation-id",
            "log_out_auth_sessions_current_delete",
            "--exclude-operation-id",
            "log_out_everywhere_auth_sessions_delete",
            "--exclude-operation-id",
            "end_session_auth_sessions__session_id__delete",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
        report = output.decode(errors="replace")
        assert process.returncode == 0, report[-6000:]

        owner, member = await new_account(http), await new_account(http)
        body = {"kind": "group", "title": "after the fuzz", "member_ids": [member.user_id]}
        chat = await http.post("/api/chats", json=body, headers=owner.headers)
        assert chat.status_code == 201, chat.text
        sent = await http.post(f"/api/chats/{chat.json()['id']}/messages", json={"body": "hi"}, headers=owner.headers)
        assert sent.status_code == 201, sent.text
