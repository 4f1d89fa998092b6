"""What reaches the logs: never a credential, and no second line per WebSocket handshake."""

from __future__ import annotations

import json
import logging
import logging.config
import re

import pytest
import structlog
import uvicorn.config

from parlour.common.logging import configure_logging
from parlour.common.settings import LogFormat


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root, server = logging.getLogger(), logging.getLogger("uvicorn")
    handlers, level, server_handlers = root.handlers[:], root.level, server.handlers[:]
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)
    server.handlers[:], server.propagate = server_handlers, not server_handlers
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


def test_the_servers_lines_reach_parlours_handler_after_uvicorns_default_logging_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)  # what a uvicorn.Config without log_config does
    configure_logging("INFO", LogFormat.JSON)
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://127.0.0.1:8000")
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["message"] == "Uvicorn running on http://127.0.0.1:8000"


def test_json_lines_carry_ecs_field_names_and_the_service_name(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", LogFormat.JSON, "parlour-gateway")
    with structlog.contextvars.bound_contextvars(request_id="r-1", user_id="u-1"):
        structlog.get_logger("parlour.test").info(
            "http request", method="GET", path="/api/chats", route="/api/chats", status=200, duration_ms=1.5
        )
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["message"] == "http request"
    assert line["log.level"] == "info"
    assert line["service.name"] == "parlour-gateway"
    assert line["log.logger"] == "parlour.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", line["@timestamp"])
    assert line["http.request.method"] == "GET"
    assert line["http.response.status_code"] == 200
    assert line["url.path"] == "/api/chats"
    assert line["http.route"] == "/api/chats"
    assert line["http.request.id"] == "r-1"
    assert line["user.id"] == "u-1"
    assert line["event.duration"] == 1_500_000
    assert not {"event", "level", "timestamp", "method", "status", "path"} & set(line)


def test_library_records_and_tracebacks_are_ecs_lines_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", LogFormat.JSON)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("some.library").exception("it failed")
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert (line["message"], line["log.level"], line["service.name"]) == ("it failed", "error", "parlour")
    assert "ValueError: boom" in line["error.stack_trace"]


def _fail_with_a_secret_in_scope() -> None:
    query = "/gateway/ws?pass=local-secret"  # a local variable of the failing frame
    raise ValueError(f"cannot parse {query[:12]}... pass=message-secret")


@pytest.mark.parametrize("log_format", [LogFormat.CONSOLE, LogFormat.JSON])
def test_a_traceback_shows_no_locals_and_no_credential(
    capsys: pytest.CaptureFixture[str], log_format: LogFormat
) -> None:
    configure_logging("INFO", log_format)
    try:
        _fail_with_a_secret_in_scope()
    except ValueError:
        structlog.get_logger("parlour.test").exception("failed")
        logging.getLogger("some.library").exception("failed too")
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "_fail_with_a_secret_in_scope" in err
    assert "local-secret" not in err
    assert "message-secret" not in err
    assert "─ locals ─" not in err


def test_a_clients_invalid_utf8_frame_is_one_info_line_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", LogFormat.JSON)
    try:
        b"\xff".decode()
    except UnicodeDecodeError:
        logging.getLogger("uvicorn.error").exception("Invalid UTF-8 sequence received from client.")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["log.level"] == "info"
    assert "Traceback" not in lines[0]
