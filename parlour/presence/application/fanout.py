"""The fan-out: changed users gather in a bounded buffer, and one flush at most every second tells each
watcher, in one frame, the presence of every contact that changed.

A change is noted only when what watchers see changed (`seen`), and flushed with the presence read at
flush time, so a user flapping within the second is sent once, as they are then. A full buffer makes
the noting handler wait for the next flush (back-pressure onto the bus consumer, never an unbounded
queue). The first change after a quiet second goes out at once; under load, one flush per interval.

The same flush tells the other services (`presence.changed`, for notifications) the status of every user
whose status changed, hidden or not, read at flush time: one publication per flush.
"""

from __future__ import annotations

import asyncio

import structlog

from parlour.common.clock import Clock
from parlour.presence.application.contacts import MembershipView
from parlour.presence.application.ports import Frames, PresenceState
from parlour.presence.domain.coalescing import PendingChanges, plan
from parlour.presence.domain.model import Seen, seen

log = structlog.get_logger(__name__)

# Users whose change one flush carries at most; a handler noting one more waits for the flush.
PENDING_CAPACITY = 10_000


class Fanout:
    """Coalesces presence changes and sends them to the users who share a chat with each changed user."""

    def __init__(
        self,
        state: PresenceState,
        contacts: MembershipView,
        frames: Frames,
        clock: Clock,
        *,
        interval: float = 1.0,
        capacity: int = PENDING_CAPACITY,
    ) -> None:
        self._state = state
        self._contacts = contacts
        self._frames = frames
        self._clock = clock
        self._pending = PendingChanges(capacity, interval)
        self._statuses: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    async def changed(self, user_id: str) -> None:
        """Note that what watchers see of the user changed; waits while the buffer is full."""
        while not self._pending.add(user_id):
            self._room.clear()
            self._wake.set()
            await self._room.wait()
        self._wake.set()

    def status_changed(self, user_id: str) -> None:
        """Note that the user's status changed (whatever watchers see): the services hear of it at the flush."""
        self._statuses[user_id] = None
        self._wake.set()

    async def run(self) -> None:
        """Flush whenever changes wait and the interval since the last flush has passed; until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()  # changes noted from here on go out with this flush or wake the next one
            # asyncio may end a sleep a little early (its clock's resolution): sleep until really due.
            while (delay := self._pending.due(self._clock.monotonic())) > 0:  # noqa: ASYNC110 - a timer, no event
                await asyncio.sleep(delay)
            try:
                await self.flush()
            except Exception as error:  # the store, the database or the bus is down: these changes are lost
                log.warning("presence.flush_failed", error=f"{type(error).__name__}: {error}")

    async def flush(self) -> int:
        """Send what is pending now (if the interval allows); returns how many frames went out."""
        users = self._pending.take(self._clock.monotonic())
        self._room.set()
        await self._tell_statuses()
        if not users:
            return 0
        chats_of, members_of = await self._contacts.memberships(users)
        updates = plan(users, chats_of, members_of)
        if not updates:
            return 0
        views = await seen_of(self._state, users)
        await self._frames.updates([(update.watchers, {u: views[u] for u in update.users}) for update in updates])
        return sum(len(update.watchers) for update in updates)

    async def _tell_statuses(self) -> None:
        if not self._statuses:
            return
        users, self._statuses = list(self._statuses), {}
        records = await self._state.presence(users)
        await self._frames.statuses({user_id: records[user_id][0] for user_id in users})


async def seen_of(state: PresenceState, user_ids: list[str]) -> dict[str, Seen]:
    """What watchers see of each user, in one read."""
    records = await state.presence(user_ids)
    return {user_id: seen(presence, hidden=hidden) for user_id, (presence, hidden) in records.items()}
