"""The presence use cases: sessions open and close, activity, dead gateways, membership, the setting, look-ups.

Each change to one user runs under that user's lock in this process: read their sessions, write the
change, derive their presence (domain/model.py), store it if it changed, and note it for the fan-out if
what watchers see changed. Several presence processes share the state in the key-value store; two of
them changing one user at the same instant may store a presence one event old, which the user's next
event corrects (docs/subsystems/presence.md, case 7).
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from parlour.common.clock import Clock
from parlour.common.locks import KeyedLocks
from parlour.presence.application.contacts import MembershipView
from parlour.presence.application.fanout import Fanout, seen_of
from parlour.presence.application.ports import Frames, PresenceState, PrivacySettings
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

    async def session_opened(self, user_id: str, session_id: str, gateway_id: str) -> None:
        """A session opened: record it, then send that session its contacts' presence."""
        async with self._locks.hold(user_id):
            sessions = await self._state.sessions(user_id)
            if session_id in sessions:  # a repeated event, or one that comes after its close
                return
            session = LiveSession(gateway_id)
            await self._state.open_session(user_id, session_id, session)
            sessions[session_id] = session
            await self._settle(user_id, sessions)
        contacts = sorted(await self._contacts.of(user_id))
        await self._frames.snapshot(user_id, session_id, await seen_of(self._state, contacts))

    async def session_closed(self, user_id: str, session_id: str, gateway_id: str) -> None:
        """A session closed (or its gateway died): forget it, leaving a tombstone."""
        async with self._locks.hold(user_id):
            sessions = await self._state.sessions(user_id)
            await self._state.close_session(user_id, session_id, gateway_id)
            if sessions.pop(session_id, None) is not None:
                await self._settle(user_id, sessions)

    async def report_activity(self, user_id: str, session_id: str, *, idle: bool) -> None:
        """The client said whether its person is idle; ignored for a session presence does not hold."""
        async with self._locks.hold(user_id):
            sessions = await self._state.sessions(user_id)
            current = sessions.get(session_id)
            if current is None or current.idle == idle:
                return
            session = LiveSession(current.gateway_id, idle)
            await self._state.open_session(user_id, session_id, session)
            sessions[session_id] = session
            await self._settle(user_id, sessions)

    async def sweep(self) -> int:
        """Close every session of the gateways whose lease lapsed; returns how many were closed."""
        known, live = await self._state.gateways()
        closed = 0
        for gateway_id in sorted(known - live):
            sessions = await self._state.sessions_of_gateway(gateway_id)
            for session in sessions:
                await self.session_closed(session.user_id, session.session_id, gateway_id)
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
        for user_id in sorted(added):  # and each newcomer hears the others, on all their sessions
            await self._frames.snapshot(user_id, None, {other: v for other, v in views.items() if other != user_id})

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

    async def _settle(self, user_id: str, sessions: dict[str, LiveSession | None]) -> None:
        previous, hidden = (await self._state.presence([user_id]))[user_id]
        current = after(previous, (s for s in sessions.values() if s is not None), self._clock.now())
        if current == previous:
            return
        await self._state.save_presence(user_id, current)
        if seen(previous, hidden=hidden) != seen(current, hidden=hidden):
            await self._fanout.changed(user_id)
