"""The scheduler: due pending states become notifications, handed to the channels' `Dispatcher`.

One round (`run_once`): claim up to `batch` due states (committed: another process skips them, and one
that dies holding them hands them on after `CLAIM_SECONDS`), look at each member again (status, mute,
membership, read cursor, preview setting, senders' names), `dispatch` the notifications that remain
(durable on return), then settle each state against what arrived meanwhile. A crash between the
dispatch and the settle dispatches again after the claim lapses, with the same notification ids: at
least once, and the dispatcher is idempotent by id (docs/subsystems/notifications.md, case 6).

`run` repeats rounds until cancelled: at once while rounds come back full, else at the earliest due
time, when woken by a new pending state, or after `idle` seconds (another process's states); a failed
round is logged and tried again after `RETRY_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Mapping

import structlog

from parlour.common.clock import Clock
from parlour.notifications.application.ports import Dispatcher
from parlour.notifications.application.stores import Directory, Key, Memberships, PendingStore, Preferences, Statuses
from parlour.notifications.domain.model import Notification
from parlour.notifications.domain.rule import Circumstances, Outcome, Pending, Timing, decide, settle

log = structlog.get_logger(__name__)

# How long a claimed state stays with the process that claimed it (then another may take it again).
CLAIM_SECONDS = 30.0
RETRY_SECONDS = 1.0


class Scheduler:
    """Turns due pending states into dispatched notifications."""

    def __init__(
        self,
        pending: PendingStore,
        memberships: Memberships,
        preferences: Preferences,
        directory: Directory,
        statuses: Statuses,
        dispatcher: Dispatcher,
        clock: Clock,
        timing: Timing,
        *,
        batch: int = 200,
        idle: float = 1.0,
        counted: Callable[[Mapping[Outcome, int]], None] = lambda outcomes: None,
    ) -> None:
        self._pending = pending
        self._memberships = memberships
        self._preferences = preferences
        self._directory = directory
        self._statuses = statuses
        self._dispatcher = dispatcher
        self._clock = clock
        self._timing = timing
        self._batch = batch
        self._idle = idle
        self._counted = counted
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something new waits: look at the earliest due time again."""
        self._wake.set()

    async def run(self) -> None:
        """Rounds until cancelled; failures are logged and retried."""
        while True:
            self._wake.clear()
            try:
                if await self.run_once() >= self._batch:
                    continue
                delay = await self._until_next()
            except Exception as error:  # the database or the dispatcher failed: the states stay, retried
                log.warning("notifications.round_failed", error=f"{type(error).__name__}: {error}")
                delay = RETRY_SECONDS
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def _until_next(self) -> float:
        due = await self._pending.next_due()
        if due is None:
            return self._idle
        return min(self._idle, max(0.0, due - self._clock.now()))

    async def run_once(self) -> int:
        """One round; returns how many due states it took."""
        now = self._clock.now()
        claimed = await self._pending.claim_due(now, self._batch, now + CLAIM_SECONDS)
        if not claimed:
            return 0
        outcomes = await self._decide(claimed)
        notifications = [n for _, n in outcomes.values() if n is not None]
        if notifications:
            await self._dispatcher.dispatch(notifications)
        settled_at = self._clock.now()
        by_key = {(p.chat_id, p.user_id): p for p in claimed}

        def finish(current: dict[Key, Pending]) -> list[Pending]:
            return [settle(by_key[k], current[k], outcomes[k][0], settled_at, self._timing) for k in by_key]

        await self._pending.change(by_key.keys(), finish)
        self._counted(Counter(outcome for outcome, _ in outcomes.values()))
        return len(claimed)

    async def _decide(self, claimed: list[Pending]) -> dict[Key, tuple[Outcome, Notification | None]]:
        keys = [(p.chat_id, p.user_id) for p in claimed]
        users = {p.user_id for p in claimed}
        statuses = await self._statuses.of(users)
        muted = await self._preferences.muted(keys)
        reads = await self._memberships.read_seqs(keys)
        previews = await self._preferences.previews(users)
        names = await self._directory.names({s for p in claimed for s in p.sender_ids})
        at = self._clock.utcnow()
        decided: dict[Key, tuple[Outcome, Notification | None]] = {}
        for key, pending in zip(keys, claimed, strict=True):
            now = Circumstances(
                statuses[pending.user_id], key in muted, reads.get(key), previews[pending.user_id], names
            )
            decided[key] = decide(pending, now, at)
        return decided
