"""The presence use cases: sessions open and close, activity, dead gateways, membership, the setting, look-ups.

A batch of session changes (a bus batch, or a dead gateway's sessions) runs under the locks of its users
in this process: one read of their sessions and presence, the changes applied in order in memory, their
presence derived (domain/model.py), one write of what changed, and the users whose view changed noted for
the fan-out. A batch of a thousand openings costs three round trips, not six thousand. Several presence
processes share the state in the key-value store; two of them changing one user at the same instant may
store a presence one event old, which the user's next event corrects (docs/subsystems/presence.md, case 7).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

import structlog

from parlour.common.clock import Clock
from parlour.common.locks import KeyedLocks
from parlour.presence.application.contacts import MembershipView
from parlour.presence.application.fanout import Fanout, seen_of
from parlour.presence.application.ports import (
    Activity,
    Closed,
    Frames,
    Opened,
    PresenceState,
    PrivacySettings,
    SessionChange,
    Snapshot,
    StateChanges,
)
from parlour.presence.domain.errors import UserNotFound
from parlour.presence.domain.model import LiveSession, Seen, after, seen

log = structlog.get_logger(__name__)


class PresenceHandlers:
    """What the bus consumers, the sweep and the HTTP routes call."""

    def __init__(
        self,
        state: PresenceState,
        contacts: MembershipView,
        settings: PrivacySettings,
        frames: Frames,
        fanout: Fanout,
        clock: Clock,
    ) -> None:
        self._state = state
        self._contacts = contacts
        self._settings = settings
        self._frames = frames
        self._fanout = fanout
        self._clock = clock
        self._locks = KeyedLocks()

    async def apply(self, changes: Sequence[SessionChange]) -> list[tuple[str, str]]:
        """Apply a batch of session changes in order: two reads and one write for the whole batch, under
        the locks of every user in it. Returns the (user, session) of each opening that is live and wants
        its snapshot (`send_snapshots`): a repeated one is, one that comes after its close is not."""
        users = {change.user_id for change in changes}
        async with self._locks.hold_all(users):
            sessions = await self._state.sessions_of(users)
            records = await self._state.presence(sorted(users))
            current = {user_id: presence for user_id, (presence, _) in records.items()}
            writes = StateChanges()
            live: list[tuple[str, str]] = []
            now = self._clock.now()
            for change in changes:
                mine = sessions[change.user_id]
                if not _record(change, mine, writes, live):
                    continue
                current[change.user_id] = after(current[change.user_id], (s for s in mine.values() if s), now)
            changed: list[str] = []
            for user_id, presence in current.items():
                previous, hidden = records[user_id]
                if presence != previous:
                    writes.presence[user_id] = presence
                    if presence.status is not previous.status:
                        self._fanout.status_changed(user_id)
                    if seen(previous, hidden=hidden) != seen(presence, hidden=hidden):
                        changed.append(user_id)
            await self._state.apply(writes)
        for user_id in changed:
            await self._fanout.changed(user_id)
        return live

    async def session_opened(self, user_id: str, session_id: str, gateway_id: str) -> bool:
        """One opening (`apply`), then that session's snapshot if it is live; returns whether it is."""
        live = await self.apply([Opened(user_id, session_id, gateway_id)])
        await self.send_snapshots(live)
        return bool(live)

    async def session_closed(self, user_id: str, session_id: str, gateway_id: str) -> None:
        """One closing (`apply`)."""
        await self.apply([Closed(user_id, session_id, gateway_id)])

    async def report_activity(self, user_id: str, session_id: str, *, idle: bool) -> None:
        """One `activity` (`apply`); ignored for a session presence does not hold."""
        await self.apply([Activity(user_id, session_id, idle)])

    async def send_snapshots(self, sessions: Sequence[tuple[str, str]]) -> None:
        """Each of these (user, session) its contacts' presence: one read of contacts and of presence, and
        one publication, for all of them (a bus batch of openings costs what one does)."""
        if not sessions:
            return
        contacts = await self._contacts.of_many({user_id for user_id, _ in sessions})
        views = await seen_of(self._state, sorted({c for found in contacts.values() for c in found}))
        await self._frames.snapshots(
            [
                Snapshot(user_id, session_id, {c: views[c] for c in sorted(contacts.get(user_id, ()))})
                for user_id, session_id in sessions
            ]
        )

    async def sweep(self) -> int:
        """Close every session of the gateways whose lease lapsed; returns how many were closed."""
        known, live = await self._state.gateways()
        closed = 0
        for gateway_id in sorted(known - live):
            sessions = await self._state.sessions_of_gateway(gateway_id)
            await self.apply([Closed(s.user_id, s.session_id, gateway_id) for s in sessions])
            await self._state.forget_gateway(gateway_id)
            closed += len(sessions)
            log.warning("presence.gateway_lapsed", gateway_id=gateway_id, sessions=len(sessions))
        return closed

    async def members_changed(self, chat_id: str, version: int, member_ids: Sequence[str]) -> None:
        """Keep the projection; whoever now shares the chat with someone new hears of them."""
        added = await self._contacts.apply(chat_id, version, member_ids)
        if not added:
            return
        for user_id in added if len(added) < len(set(member_ids)) else member_ids:
            await self._fanout.changed(user_id)  # the others hear the newcomers (everyone, in a new chat)
        if len(added) == len(set(member_ids)):
            return
        views = await seen_of(self._state, sorted(set(member_ids)))
        # Each newcomer hears the others, on all their sessions.
        await self._frames.snapshots(
            [Snapshot(u, None, {other: v for other, v in views.items() if other != u}) for u in sorted(added)]
        )

    async def hidden(self, user_id: str) -> bool:
        """The user's privacy setting."""
        return await self._settings.hidden(user_id)

    async def set_hidden(self, user_id: str, hidden: bool) -> bool:
        """Hide or show the user's presence; watchers hear of it with the next flush."""
        await self._settings.set_hidden(user_id, hidden)
        async with self._locks.hold(user_id):
            presence, was_hidden = (await self._state.presence([user_id]))[user_id]
            await self._state.set_hidden([user_id], hidden)
        if seen(presence, hidden=was_hidden) != seen(presence, hidden=hidden):
            await self._fanout.changed(user_id)
        return hidden

    async def look_up(self, caller: str, user_ids: Sequence[str]) -> list[tuple[str, Seen]]:
        """The presence of each user asked for, in order; `UserNotFound` if any is not a contact."""
        others = {user_id for user_id in user_ids if user_id != caller}
        if others and await self._contacts.among(caller, others) != others:
            raise UserNotFound()
        records = await self._state.presence(list(dict.fromkeys(user_ids)))
        return [(u, seen(records[u][0], hidden=records[u][1] and u != caller)) for u in user_ids]

    async def mirror_settings(self) -> int:
        """Copy every hidden flag into the shared state (at start-up: an in-memory store starts empty)."""
        hiding = await self._settings.hiding()
        await self._state.set_hidden(hiding, True)
        return len(hiding)


def _record(
    change: SessionChange,
    sessions: dict[str, LiveSession | None],
    writes: StateChanges,
    live: list[tuple[str, str]],
) -> bool:
    """Apply one change to a user's sessions (in memory) and note its writes; returns whether the user's
    live sessions changed."""
    user_id, session_id = change.user_id, change.session_id
    current = sessions.get(session_id)
    match change:
        case Opened(gateway_id=gateway_id):
            if session_id in sessions:  # repeated (live: its snapshot again), or after its close (a tombstone)
                if current is not None:
                    live.append((user_id, session_id))
                return False
            session = sessions[session_id] = LiveSession(gateway_id)
            writes.recorded.append((user_id, session_id, session))
            live.append((user_id, session_id))
            return True
        case Closed(gateway_id=gateway_id):
            writes.closed.append((user_id, session_id, gateway_id))
            sessions[session_id] = None
            return current is not None
        case Activity(idle=idle):
            if current is None or current.idle == idle:
                return False
            session = sessions[session_id] = LiveSession(current.gateway_id, idle)
            writes.recorded.append((user_id, session_id, session))
            return True
        case _:
            assert_never(change)
