"""structlog set-up: readable lines in a terminal, JSON in production, context bound through contextvars.

What each level logs is written down in docs/logging.md.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

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


def configure_logging(level: str = "INFO", log_format: LogFormat = LogFormat.CONSOLE) -> None:
    """Route structlog and the standard library's loggers through one renderer."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Plain tracebacks in both formats: never a frame's local variables (a connection's scope holds its
        # `pass=`), repeated frames collapsed (a RecursionError is a few lines), and redacted like the rest.
        structlog.processors.format_exc_info,
        redact_event,
    ]
    renderer: structlog.types.Processor
    if log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
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
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    server_log = logging.getLogger("uvicorn.error")
    for server_filter in (DropServerWebSocketLines, QuietClientFaults):
        if not any(isinstance(existing, server_filter) for existing in server_log.filters):
            server_log.addFilter(server_filter())
    root.setLevel(level)
    # uvicorn's own access log would repeat our one line per request.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("aiormq", "aio_pika", "sqlalchemy.engine", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
