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

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

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
    ) -> None:
        self._uow = unit_of_work
        self._names = names  # the protocol's name of each command, for the answers that name it
        self._handlers = handlers
        self._events = events
        self._transactional: dict[type[Any], Callable[[UnitOfWork, Any, list[Event]], Awaitable[Any]]] = {
            SendMessage: handlers.send_message,
            EditMessage: handlers.edit_message,
            DeleteMessage: handlers.delete_message,
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
        """Run consecutive commands in one transaction; answer refused ones; publish once, after commit."""
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
