"""Runs message commands: one per transaction for REST, a whole batch per transaction for the bus.

Group commit: the bus hands over consecutive commands of one partition; they run in ONE transaction, and
their events are stored in its outbox entry and leave after it commits (parlour/messaging/application/
outbox.py). Consecutive sends are stored together with a constant number of statements, whatever the
number of chats in the batch: one membership check, one client-id lookup, one seq allocation, one
multi-row insert, one cursor move.

The bus acknowledges the batch only when this returns, so a crash before the commit redelivers every
command, and a crash after it redelivers commands that are then found done: a repeated send acks its
sender again and announces nothing (the outbox publishes the original announcement); edits, deletes and
cursors land where they are.

A command refused for a reason the caller can act on (a `ParlourError`) is answered to its connection
and does not disturb its neighbours: handlers refuse before they write. Anything else (the database is
down, a bug) fails the whole batch, and the bus retries each command on its own, then parks it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

from parlour.common import tracing
from parlour.common.errors import ParlourError
from parlour.messaging.application.messages import MessageHandlers
from parlour.messaging.application.ports import ConcurrentWrite, EventPublisher, UnitOfWork, UnitOfWorkFactory
from parlour.messaging.domain.messages import (
    ChatCommand,
    CommandRejected,
    DeleteMessage,
    EditMessage,
    Event,
    MarkRead,
    ReactToMessage,
    RejectCommand,
    RelayTyping,
    SendMessage,
    Sync,
)


class CommandProcessor:
    """Executes `ChatCommand`s through `MessageHandlers` and publishes their events after the commit."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        handlers: MessageHandlers,
        events: EventPublisher,
        names: Mapping[type[Any], str],
        *,
        concurrency: int = 1,
    ) -> None:
        self._uow = unit_of_work
        self._turns = asyncio.Semaphore(concurrency)
        self._waiting: list[tuple[Sequence[ChatCommand], asyncio.Future[None]]] = []
        self._traces: dict[asyncio.Future[None], Any] = {}  # each waiting batch's trace context, while tracing
        self._names = names  # the protocol's name of each command, for the answers that name it
        self._handlers = handlers
        self._events = events
        self._transactional: dict[type[Any], Callable[[UnitOfWork, Any, list[Event]], Awaitable[Any]]] = {
            SendMessage: handlers.send_message,
            EditMessage: handlers.edit_message,
            DeleteMessage: handlers.delete_message,
            ReactToMessage: handlers.react,
            MarkRead: handlers.mark_read,
            Sync: handlers.sync,
        }

    async def execute(self, command: ChatCommand) -> Any:
        """Run one command in its own transaction (REST); errors go to the caller. Returns its result."""
        for attempt in range(2):
            out: list[Event] = []
            try:
                async with self._uow() as uow:
                    result = await self._dispatch(uow, command, out)
                    await self._events.commit(uow, out)
            except ConcurrentWrite:
                if attempt:
                    raise
                continue  # a concurrent transaction won a unique key: running again finds its row
            return result
        raise AssertionError("unreachable")

    async def execute_batch(self, commands: Sequence[ChatCommand]) -> None:
        """Run consecutive commands in one transaction; answer refused ones; publish once, after commit.

        Batches of other partitions that arrive while a transaction runs wait for the next one and then
        share it (at most `concurrency` transactions at once): every partition waits on the commit
        anyway, so one commit for all of them costs less than one each. Each partition still hands over
        its next batch only when this returns, so its order holds; if the shared transaction fails, every
        batch in it fails, and the bus retries each message on its own.
        """
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((commands, done))
        if tracing.enabled:
            self._traces[done] = tracing.current()
        async with self._turns:
            if not done.done():
                group, self._waiting = self._waiting, []
                try:
                    with self._batch_span(group):
                        await self._execute_group([command for batch, _ in group for command in batch])
                except asyncio.CancelledError:  # this caller's worker left: the others go in the next turn
                    self._waiting[:0] = [item for item in group if item[1] is not done]
                    raise
                except BaseException as error:
                    for _, other in group:
                        if not other.done():
                            other.set_exception(error)
                else:
                    for _, other in group:
                        if not other.done():
                            other.set_result(None)
        await done

    def _batch_span(self, group: list[tuple[Sequence[ChatCommand], asyncio.Future[None]]]) -> Any:
        # A child of the batch whose turn it is (the current context), linking every batch it took along.
        if not tracing.enabled:
            return tracing.NO_SPAN
        links = tracing.links_of(self._traces.pop(done, None) for _, done in group)
        size = sum(len(batch) for batch, _ in group)
        return tracing.span("messaging batch", links=links, attributes={"parlour.batch.commands": size})

    async def _execute_group(self, commands: Sequence[ChatCommand]) -> None:
        out: list[Event] = []
        if all(isinstance(command, RelayTyping | RejectCommand) for command in commands):
            for command in commands:  # nothing to store: no transaction, no write lock
                await self._run_guarded(None, command, out)
            await self._events.send(out)
            return
        async with self._uow() as uow:
            for run in _runs(commands):
                if isinstance(run, list):  # consecutive sends go together: constant statements
                    await self._handlers.send_messages(uow, run, out, lambda c, e: self._reject(c, e, out))
                else:
                    await self._run_guarded(uow, run, out)
            await self._events.commit(uow, out)

    async def _run_guarded(self, uow: UnitOfWork | None, command: ChatCommand, out: list[Event]) -> None:
        try:
            await self._dispatch(uow, command, out)
        except ParlourError as error:
            self._reject(command, error, out)

    def _reject(self, command: ChatCommand, error: ParlourError, out: list[Event]) -> None:
        if command.session_id is not None:
            client_id = command.client_id if isinstance(command, SendMessage) else None
            name = self._names[type(command)]
            out.append(CommandRejected(command.actor, command.session_id, name, error.code, error.message, client_id))

    async def _dispatch(self, uow: UnitOfWork | None, command: ChatCommand, out: list[Event]) -> Any:
        if isinstance(command, RelayTyping):
            return await self._handlers.relay_typing(command, out)
        if isinstance(command, RejectCommand):
            return self._handlers.reject(command, out)
        assert uow is not None
        return await self._transactional[type(command)](uow, command, out)


def _runs(commands: Sequence[ChatCommand]) -> Iterator[ChatCommand | list[SendMessage]]:
    """The commands in order, with each run of consecutive sends gathered in a list."""
    sends: list[SendMessage] = []
    for command in commands:
        if isinstance(command, SendMessage):
            sends.append(command)
            continue
        if sends:
            yield sends
            sends = []
        yield command
    if sends:
        yield sends
