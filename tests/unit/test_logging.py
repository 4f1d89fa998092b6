"""What reaches the logs: never a credential, and no second line per WebSocket handshake."""

from __future__ import annotations

import logging

import pytest
import structlog

from parlour.common.logging import configure_logging
from parlour.common.settings import LogFormat


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_a_websocket_pass_in_a_url_is_never_logged(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", LogFormat.JSON)
    logging.getLogger("some.library").info('GET "%s" 200', "/gateway/ws?pass=s3cr3t-pass&x=1")
    structlog.get_logger("parlour.test").info("opened", url="/gateway/ws?pass=other-secret")
    err = capsys.readouterr().err
    assert "s3cr3t-pass" not in err
    assert "pass=[redacted]&x=1" in err
    assert "other-secret" not in err


def test_uvicorns_own_websocket_handshake_lines_are_left_to_the_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", LogFormat.JSON)
    server = logging.getLogger("uvicorn.error")
    server.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/gateway/ws?pass=abc")
    server.info("Uvicorn running on %s", "http://127.0.0.1:8000")
    err = capsys.readouterr().err
    assert "[accepted]" not in err
    assert "Uvicorn running on" in err
