"""The transactional outbox: the events of a commit are stored in it, then a relay publishes them.

`OutboxRelay.commit` writes one outbox entry (the rendered bus messages of the transaction's lasting
events) in the same transaction as the work, commits, and publishes the entry at once; the entry is then
done, and its removal rides along with the next transaction (or the relay's next tick), so the hot path
pays no transaction of its own for it. Answers to one connection (acks, resume answers, rejections) and
typing change nothing stored: they are published after the commit but never stored, since a client whose
answer is lost asks again.

What can go wrong, and what happens (docs/subsystems/outbox.md):

1. The process dies after the commit, before or during the publication. Its entries stay. Each relay
   heartbeats its writer id in the key-value store; an entry whose writer is not alive is an orphan, and
   every relay publishes orphans (oldest first, locked against other relays on PostgreSQL) on start-up and
   every `interval` seconds. A restarted process has a new writer id, so its own leftovers are orphans too.
   Members may then get a message twice (clients drop a `seq` they hold): only after such a crash.
2. The bus refuses a publication (or anything else stops it, or a commit's outcome is unknown). The relay
   falls behind: from then on it publishes its own entries from
   the database, oldest first, until none is left, and only then publishes inline again, so order holds.
3. The transaction rolls back: nothing was stored, nothing is published.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence

import structlog

from parlour.common import tracing
from parlour.common.bus.background import every
from parlour.common.errors import ParlourError
from parlour.messaging.application.ports import (
    EventChannel,
    EventPublisher,
    OutboxEntry,
    Publication,
    UnitOfWork,
    UnitOfWorkFactory,
    WriterRegistry,
)
from parlour.messaging.domain.messages import CommandRejected, Event, MessageAcknowledged, Synced, UserTyped

log = structlog.get_logger(__name__)

# Events that change nothing stored: published after the commit, never kept in the outbox.
ANSWERS = (MessageAcknowledged, CommandRejected, Synced, UserTyped)
PAGE = 100


def new_writer_id() -> str:
    """A relay's name for this life of the process."""
    return f"relay-{uuid.uuid4().hex[:16]}"


class OutboxRelay(EventPublisher):
    """Stores each commit's events in its transaction and publishes them after; see the module docstring."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        channel: EventChannel,
        registry: WriterRegistry,
        *,
        writer: str | None = None,
        interval: float = 1.0,
        ttl: float = 3.0,
        after_commit: Callable[[], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = unit_of_work
        self._channel = channel
        self._registry = registry
        self.writer = writer or new_writer_id()
        self._interval = interval
        self._ttl = ttl
        self._after_commit = after_commit
        self._done: set[int] = set()  # published, not yet removed
        self._busy: set[int] = set()  # committed or committing, published inline by their own caller
        self._behind = False  # a publication failed: own entries leave from the database, in order
        self._behind_since: float | None = None  # when it fell behind: its oldest entry not yet published
        self._monotonic = monotonic
        self._wake = asyncio.Event()

    async def commit(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        lasting = [event for event in events if not isinstance(event, ANSWERS)]
        stored = self._channel.render(lasting) if lasting else []
        entry_id = await uow.outbox.add(self.writer, self._channel.pack(stored)) if stored else None
        removing = sorted(self._done)
        if removing:
            await uow.outbox.remove(removing)
        if entry_id is not None:
            self._busy.add(entry_id)
        try:
            await uow.commit()
        except BaseException:
            if entry_id is not None:
                # The commit may have happened though its answer was lost: the database says.
                self._busy.discard(entry_id)
                self._fall_behind()
            raise
        self._done.difference_update(removing)
        if self._after_commit is not None:
            self._after_commit()
        try:
            if entry_id is not None:
                with tracing.span("outbox publish", attributes={"parlour.outbox.entry": entry_id}):
                    await self._publish_entry(entry_id, stored)
            await self.send([event for event in events if isinstance(event, ANSWERS)])
        finally:
            if entry_id is not None:
                self._busy.discard(entry_id)

    async def send(self, events: Sequence[Event]) -> None:
        if not events:
            return
        try:
            await self._channel.publish(self._channel.render(events), None)
        except ParlourError as error:  # an answer is asked for again (resume, resend): not kept
            log.warning("outbox.answers_not_published", count=len(events), code=error.code)

    async def _publish_entry(self, entry_id: int, stored: list[Publication]) -> None:
        if self._behind:
            self._wake.set()  # it is in the database: the relay's loop sends it after the older ones
            return
        try:
            await self._channel.publish(stored, self._ref(entry_id))
        except BaseException as error:  # whatever stopped it (the bus, a bug, cancellation): the entry stays
            log.warning("outbox.publish_failed", entry=entry_id, error=f"{type(error).__name__}: {error}")
            self._fall_behind()
            if not isinstance(error, Exception):
                raise
            return
        self._done.add(entry_id)

    def _fall_behind(self) -> None:
        self._behind = True
        if self._behind_since is None:
            self._behind_since = self._monotonic()
        self._wake.set()

    def lag(self) -> float:
        """Seconds since this relay's oldest entry not yet published was stored (0 while it keeps up):
        the outbox lag that `parlour_outbox_lag_seconds` reports."""
        since = self._behind_since
        return 0.0 if since is None else self._monotonic() - since

    # -- the relay's loop ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Announce this writer, and publish what earlier lives of any process left (before new work)."""
        await self._registry.heartbeat(self.writer, self._ttl)
        await self._sweep_orphans()

    async def run(self) -> None:
        """Heartbeat, catch up, remove what was published and sweep orphans every `interval`; supervised."""
        # The database or the store down fails one tick: the next one tries again.
        await every(self._interval, self._tick, failure="outbox.tick_failed", wake=self._wake)

    async def stop(self) -> None:
        """Remove what was published, then leave the registry (what is left is an orphan at once)."""
        try:
            await self._remove_done()
            await self._registry.leave(self.writer)
        except Exception as error:
            log.warning("outbox.leave_failed", error=f"{type(error).__name__}: {error}")

    async def _tick(self) -> None:
        await self._registry.heartbeat(self.writer, self._ttl)
        if self._behind:
            await self._catch_up()
        await self._remove_done()
        await self._sweep_orphans()

    async def _remove_done(self) -> None:
        if not self._done:
            return
        async with self._uow() as uow:
            removing = sorted(self._done)
            await uow.outbox.remove(removing)
            await uow.commit()
        self._done.difference_update(removing)

    async def _catch_up(self) -> None:
        while True:
            async with self._uow(write=False) as uow:
                entries = await uow.outbox.of_writer(self.writer, PAGE + len(self._done) + len(self._busy))
            waiting = [entry for entry in entries if entry.id not in self._done and entry.id not in self._busy]
            if not waiting:
                self._behind = False
                self._behind_since = None
                return
            for entry in waiting:
                await self._publish_stored(entry, self._ref(entry.id))
                self._done.add(entry.id)
            log.info("outbox.caught_up", entries=len(waiting))

    async def _sweep_orphans(self) -> None:
        while True:
            live = sorted(await self._registry.live() | {self.writer})
            async with self._uow() as uow:
                orphans = await uow.outbox.orphans(live, PAGE)
                if not orphans:
                    return
                await self._publish_orphans(orphans)
                await uow.outbox.remove([entry.id for entry in orphans])
                await uow.commit()
            log.warning("outbox.orphans_published", entries=len(orphans))

    async def _publish_orphans(self, orphans: list[OutboxEntry]) -> None:
        # On SQLite this holds the write lock while it publishes: rare (after a crash), and the in-memory
        # bus takes the publications at once.
        for entry in orphans:
            await self._publish_stored(entry, f"orphan.{entry.id}")

    async def _publish_stored(self, entry: OutboxEntry, ref: str) -> None:
        try:
            publications = self._channel.unpack(entry.payload)
        except Exception:  # a bug of ours or a damaged row: it must not hold back every later entry
            log.exception("outbox.entry_unreadable", entry=entry.id)
            return
        if not tracing.enabled:
            await self._channel.publish(publications, ref)
            return
        # In the trace of the commit that stored it, however late (a catch-up, another process's orphan).
        parent = tracing.extract(publications[0].headers) if publications else None
        with tracing.span("outbox relay", context=parent, attributes={"parlour.outbox.entry": entry.id}):
            await self._channel.publish(publications, ref)

    def _ref(self, entry_id: int) -> str:
        return f"{self.writer}.{entry_id}"
