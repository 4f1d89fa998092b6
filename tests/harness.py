"""Running a real Parlour server inside a test: uvicorn on a free port, the app from the composition root."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from parlour.bootstrap import Overrides, create_app
from parlour.common.http.server import ParlourServer, server_config
from parlour.common.settings import Settings

STARTUP_TIMEOUT = 20.0


def make_settings(data_dir: Path, database_url: str | None = None, **values: Any) -> Settings:
    """Settings for a test server: no `.env`, no inherited `PARLOUR_*` surprises beyond the test defaults."""
    return Settings(_env_file=None, data_dir=data_dir, database_url=database_url, **values)


def _listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    return listener


@asynccontextmanager
async def running_server(app: FastAPI, settings: Settings, listener: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (on `listener`, else a free port); yields its base URL; stops it on exit."""
    listener = listener or _listener()
    port = listener.getsockname()[1]
    # The production configuration, but the asyncio loop pytest-asyncio runs the test on.
    server = ParlourServer(server_config(app, settings, loop="none", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()  # re-raises the start-up failure
                    raise RuntimeError("the test server stopped during start-up")
                await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            listener.close()


@asynccontextmanager
async def running_parlour(
    settings: Settings, services: Sequence[str] | None = None, overrides: Overrides | None = None
) -> AsyncIterator[str]:
    """A Parlour app from the composition root, served for the test; yields its base URL.

    The port is chosen first, so the app knows its own address (as `parlour run --port` does).
    """
    listener = _listener()
    settings = settings.model_copy(update={"port": listener.getsockname()[1]})
    app = create_app(settings, services, overrides or Overrides(migrate=True))
    async with running_server(app, settings, listener) as base_url:
        yield base_url


class LoggedProblems(logging.Handler):
    """Collects every log record with a traceback, or at ERROR and above, while attached to the root logger.

    Tests that promise "the server logged no traceback" check `seen`: the records themselves, whatever
    handler or capture renders them.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.seen.append(f"{record.levelname} {record.name}: {record.getMessage()}")


@contextmanager
def logged_problems() -> Iterator[LoggedProblems]:
    """A `LoggedProblems` on the root logger for the duration of the block."""
    problems = LoggedProblems()
    root = logging.getLogger()
    root.addHandler(problems)
    try:
        yield problems
    finally:
        root.removeHandler(problems)
