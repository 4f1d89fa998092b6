"""structlog set-up: readable lines in a terminal, JSON in production, context bound through contextvars.

JSON lines carry Elastic Common Schema (ECS) field names, so Filebeat or Vector ship them to
Elasticsearch/OpenSearch without a mapping of their own (deploy/filebeat.yml). What
each level logs, and the field names, are written down in docs/logging.md.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

from parlour.common import tracing
from parlour.common.settings import LogFormat

# Credentials that may travel in a URL's query string; their values never reach a log line.
_SECRET_IN_QUERY = re.compile(r"\b(pass|access_token|refresh_token|token)=[^&\s\"']+")


class RedactSecrets(logging.Filter):
    """Blanks credentials in query strings (the WebSocket `pass`) in every standard-library record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            message = record.getMessage()
            redacted = _SECRET_IN_QUERY.sub(r"\1=[redacted]", message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


def redact_event(_logger: object, _method: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    """The structlog side of `RedactSecrets`: blanks credentials in every string value of an event."""
    for key, value in event.items():
        if isinstance(value, str) and "=" in value:
            event[key] = _SECRET_IN_QUERY.sub(r"\1=[redacted]", value)
    return event


class QuietClientFaults(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 text frame as an ERROR with a traceback, though it is the
    client's fault and uvicorn already answers it (close 1007): one INFO line without a traceback instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Invalid UTF-8 sequence"):
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class DropServerWebSocketLines(logging.Filter):
    """uvicorn's per-handshake INFO lines: the gateway writes its own open and close lines instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and isinstance(record.msg, str) and '"WebSocket ' in record.msg)


ECS_VERSION = "8.11.0"

# Our field names -> ECS (https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html). Fields
# not listed keep their names (`conn_id`, `chat_id`, `queue`, ...), beside the ECS ones.
_ECS_NAMES = {
    "timestamp": "@timestamp",
    "level": "log.level",
    "event": "message",
    "logger": "log.logger",
    "method": "http.request.method",
    "status": "http.response.status_code",
    "path": "url.path",
    "route": "http.route",
    "request_id": "http.request.id",
    "trace_id": "trace.id",
    "span_id": "span.id",
    "user_id": "user.id",
    "exception": "error.stack_trace",
}


class EcsFields:
    """The last processor before JSON: ECS names for our fields, `service.name`, `ecs.version`, and
    `event.duration` in nanoseconds (ECS) from `duration_ms`, which stays for people reading lines."""

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name

    def __call__(self, _logger: object, _method: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
        renamed: structlog.types.EventDict = {
            "@timestamp": event.pop("timestamp", None),
            "log.level": event.pop("level", None),
            "message": event.pop("event", None),
            "service.name": self.service_name,
            "ecs.version": ECS_VERSION,
        }
        for ours, ecs in _ECS_NAMES.items():
            if ours in event:
                renamed[ecs] = event.pop(ours)
        if isinstance(event.get("duration_ms"), int | float):
            renamed["event.duration"] = int(event["duration_ms"] * 1_000_000)
        renamed.update(event)
        return renamed


def configure_logging(
    level: str = "INFO", log_format: LogFormat = LogFormat.CONSOLE, service_name: str = "parlour"
) -> None:
    """Route structlog and the standard library's loggers through one renderer; JSON lines name the
    process's `service_name` (`parlour-gateway`, ...; `parlour` for the one embedded process)."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        tracing.log_ids,  # trace.id and span.id of the current span, while tracing is on
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Plain tracebacks in both formats: never a frame's local variables (a connection's scope holds its
        # `pass=`), repeated frames collapsed (a RecursionError is a few lines), and redacted like the rest.
        structlog.processors.format_exc_info,
        redact_event,
    ]
    renderer: structlog.types.Processor
    final: list[structlog.types.Processor] = []
    if log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
        final.append(EcsFields(service_name))
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final, renderer],
        )
    )
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # One handler and one level for everything: a uvicorn.Config made earlier in the process gives the
    # server's loggers a level (its log_level) and, with uvicorn's default log_config, handlers of their
    # own that do not propagate here.
    for name in ("uvicorn", "uvicorn.error"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
        server_logger.setLevel(logging.NOTSET)
    server_log = logging.getLogger("uvicorn.error")
    for server_filter in (DropServerWebSocketLines, QuietClientFaults):
        if not any(isinstance(existing, server_filter) for existing in server_log.filters):
            server_log.addFilter(server_filter())
    root.setLevel(level)
    # uvicorn's own access log would repeat our one line per request.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("aiormq", "aio_pika", "sqlalchemy.engine", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
