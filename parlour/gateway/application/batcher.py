"""Client commands leave the gateway in batches: one bus message per partition per flush.

Cost on this path is per await and per broker message, not per byte (docs/benchmarks.md). So a
connection's reader never awaits the bus: it hands its commands to the batcher, which keeps them per
destination (messaging, presence) and partition, in arrival order, and one flusher sends every partition
that has any, concurrently, as one message each. While a flush waits for the broker's confirms, the next
batch gathers behind it, so batches grow with the load and a lone command still leaves within one
event-loop turn.

The batcher is bounded: past `max_pending` commands, readers wait for room (`room`), which is how a slow
broker pushes back on clients. A flush that fails tells each of its commands' sessions, whose clients may
send again (a `message.send` with the same `client_id` is idempotent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from parlour.common.errors import ParlourError
from parlour.gateway.application.ports import CommandSink
from parlour.gateway.domain.protocol import Destination
from parlour.gateway.domain.session import Command, Session

logger = structlog.get_logger(__name__)

Notify = Callable[[], None]


@dataclass(frozen=True, slots=True)
class _Pending:
    command: Command
    session: Session
    notify: Notify


class CommandBatcher:
    """Gathers the commands of every connection of this process and flushes them per partition."""

    def __init__(self, sink: CommandSink, *, max_pending: int = 20_000) -> None:
        self._sink = sink
        self._max_pending = max_pending
        self._pending: dict[tuple[Destination, int], list[_Pending]] = {}
        self._count = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def submit(self, command: Command, session: Session, notify: Notify) -> None:
        """Queue `command` from `session` for the next flush; never waits (see `room`)."""
        partition = (command.destination, self._sink.partition_of(command.partition_key))
        self._pending.setdefault(partition, []).append(_Pending(command, session, notify))
        self._count += 1
        if self._count >= self._max_pending:
            self._room.clear()
        self._wake.set()

    async def room(self) -> None:
        """Wait until the batcher takes more commands (returns at once while it has room)."""
        await self._room.wait()

    async def run(self) -> None:
        """Flush whatever is pending, as soon as there is any, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Send every pending partition now, one bus message each, concurrently."""
        pending, self._pending, self._count = self._pending, {}, 0
        self._room.set()
        if pending:
            await asyncio.gather(*(self._send(group) for group in pending.values()))

    async def _send(self, group: list[_Pending]) -> None:
        try:
            await self._sink.send([(item.command, item.session) for item in group])
        except ParlourError as error:
            logger.warning("gateway.commands_not_forwarded", count=len(group), code=error.code)
            self._failed(group, error.message)
        except Exception:
            logger.exception("gateway.commands_flush_failed", count=len(group))
            self._failed(group, "The command could not be handed to messaging: send it again.")

    @staticmethod
    def _failed(group: list[_Pending], reason: str) -> None:
        for item in group:
            item.session.command_failed(item.command, reason)
            item.notify()
