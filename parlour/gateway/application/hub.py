"""The hub: this process's live sessions, the user routes bound to its queue, and delivery to sessions.

Invariants (docs/subsystems/gateway.md):

* A user's routing key is bound to this gateway's route exactly while the user has a session here:
  bound before their first session is registered, unbound after their last one is removed. Attach and
  detach of one user are serialised by a per-user lock, so a bind and an unbind never cross.
* Delivering never awaits: a frame goes into each session's bounded buffer and its writer is woken, so a
  slow socket can only overflow its own buffer, never delay another session.
* A frame naming a session goes to that session only, and only if it belongs to one of the frame's users.
* A session of a revoked auth session (logout, logout everywhere, refresh-token reuse) is closed with
  4004 as soon as `end_auth_sessions` hears of it, its buffered frames dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import structlog

from parlour.common.bus import DeliveryRoute
from parlour.common.clock import Clock
from parlour.common.contracts import user_key
from parlour.common.locks import KeyedLocks
from parlour.gateway.application.ports import SessionEvents
from parlour.gateway.domain.protocol import CloseCode, FrameInfo
from parlour.gateway.domain.session import Session

logger = structlog.get_logger(__name__)

Notify = Callable[[], None]
RESTART_REASON = "service restart: reconnect and resume"
RESYNC_REASON = "events may have been lost on the way to this gateway: reconnect and resume"
REVOKED_REASON = "session_revoked"

# The auth session a connection's pass spoke for, set by the pass redemption in the connection's own task
# and read by `attach` when the endpoint does not pass it explicitly.
admitted_auth_session: ContextVar[str | None] = ContextVar("admitted_auth_session", default=None)
PeekFrame = Callable[[bytes], FrameInfo | None]


@dataclass(slots=True)
class _Local:
    session: Session
    notify: Notify  # wakes the connection's writer (and lets it act on a close)
    auth_session_id: str | None


class Hub:
    """Registers sessions, keeps user routes bound, and fans delivered frames out to local sessions."""

    def __init__(self, route: DeliveryRoute, events: SessionEvents, clock: Clock, peek_frame: PeekFrame) -> None:
        self._route = route
        self._events = events
        self._clock = clock
        self._peek_frame = peek_frame
        self._by_id: dict[str, _Local] = {}
        self._by_user: dict[str, dict[str, _Local]] = {}
        self._by_auth_session: dict[str, dict[str, _Local]] = {}
        self._locks = KeyedLocks()
        self._empty = asyncio.Event()
        self._empty.set()
        self.draining = False

    @property
    def session_count(self) -> int:
        return len(self._by_id)

    @property
    def user_count(self) -> int:
        return len(self._by_user)

    async def attach(
        self, session: Session, notify: Notify, auth_session_id: str | None = None
    ) -> asyncio.Future[bool]:
        """Register `session`, binding its user's route first if it is the user's first session here, and
        announce it; returns the announcement's future (`SessionEvents`), which this does not wait for:
        the connection answers `hello` at once, and waits for it only before its first command to presence
        (an `activity` ahead of its opening would be ignored there).

        `auth_session_id` (by default the one the connection's pass was redeemed for) is the login the
        session belongs to: revoking it closes the session.
        """
        auth_session_id = auth_session_id or admitted_auth_session.get()
        async with self._locks.hold(session.user_id):
            sessions = self._by_user.get(session.user_id)
            if not sessions:
                await self._route.bind(user_key(session.user_id))
                sessions = self._by_user[session.user_id] = {}
            local = _Local(session, notify, auth_session_id)
            sessions[session.id] = local
            self._by_id[session.id] = local
            if auth_session_id is not None:
                self._by_auth_session.setdefault(auth_session_id, {})[session.id] = local
            self._empty.clear()
        if self.draining:  # admitted just before the drain began: it goes with the others
            session.close(CloseCode.SERVICE_RESTART, RESTART_REASON, flush=True)
            notify()
        return self._events.opened(session)

    async def detach(self, session: Session) -> None:
        """Forget `session`, unbinding its user's route if it was the last one here. Safe to call twice."""
        async with self._locks.hold(session.user_id):
            local = self._by_id.pop(session.id, None)
            if local is None:
                return
            self._forget_auth_session(local)
            sessions = self._by_user[session.user_id]
            del sessions[session.id]
            if not sessions:
                del self._by_user[session.user_id]
                try:
                    await self._route.unbind(user_key(session.user_id))
                except Exception:
                    # The queue may already be gone (bus down); its `x-expires` and auto-delete clean up.
                    logger.warning("gateway.unbind_failed", user_id=session.user_id, exc_info=True)
            if not self._by_id:
                self._empty.set()
        await self._events.closed(session)

    def deliver(self, user_ids: Sequence[str], session_id: str | None, frame: bytes) -> int:
        """Hand one frame to the local sessions it is for; returns how many took it. Never awaits."""
        return self.deliver_batch([(user_ids, session_id, frame)])

    def deliver_batch(self, items: Iterable[tuple[Sequence[str], str | None, bytes]]) -> int:
        """Hand each frame to the local sessions it is for, in order, then wake each of them once (so a
        socket gets one write for the whole batch); returns how many frames sessions took. Never awaits."""
        touched: dict[str, _Local] = {}
        count = 0
        for user_ids, session_id, frame in items:
            count += self._hand(user_ids, session_id, frame, touched)
        for local in touched.values():
            local.notify()
        return count

    def _hand(self, user_ids: Sequence[str], session_id: str | None, frame: bytes, touched: dict[str, _Local]) -> int:
        info = _LazyInfo(frame, self._peek_frame)
        if session_id is not None:
            local = self._by_id.get(session_id)
            if local is None or local.session.user_id not in user_ids:
                return 0
            local.session.answer(frame, info.get() if local.session.resuming else None)
            touched[session_id] = local
            return 1
        count = 0
        for user_id in dict.fromkeys(user_ids) if len(user_ids) > 1 else user_ids:
            for local in self._by_user.get(user_id, {}).values():
                session = local.session
                session.deliver(frame, info.get() if session.needs_info else None)
                touched[session.id] = local
                count += 1
        return count

    def end_auth_sessions(self, auth_session_ids: Iterable[str]) -> int:
        """Close (4004, dropping what is buffered) every local session of these auth sessions; how many."""
        count = 0
        for auth_session_id in auth_session_ids:
            for local in list(self._by_auth_session.get(auth_session_id, {}).values()):
                if local.session.closing is None:
                    local.session.close(CloseCode.SESSION_REVOKED, REVOKED_REASON)
                    local.notify()
                    count += 1
        if count:
            logger.info("gateway.sessions_revoked", sessions=count)
        return count

    def _forget_auth_session(self, local: _Local) -> None:
        if local.auth_session_id is None:
            return
        sessions = self._by_auth_session.get(local.auth_session_id, {})
        sessions.pop(local.session.id, None)
        if not sessions:
            self._by_auth_session.pop(local.auth_session_id, None)

    def tick(self) -> None:
        """Let every session act on the time (pings, missed pongs, stalled resumes)."""
        now = self._clock.monotonic()
        for local in list(self._by_id.values()):
            local.session.tick(now)
            if local.session.wants_write:
                local.notify()

    async def run_ticker(self, interval: float) -> None:
        """Tick every `interval` seconds until cancelled; a failing tick is logged, never fatal."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.tick()
            except Exception:
                logger.exception("gateway.tick_failed")

    async def drain(self, grace: float) -> None:
        """Stop taking sessions, close every one with 1012 after its buffered frames, wait for them to go."""
        if not self.draining:
            self.draining = True
            logger.info("gateway.draining", sessions=len(self._by_id))
        for local in list(self._by_id.values()):
            local.session.close(CloseCode.SERVICE_RESTART, RESTART_REASON, flush=True)
            local.notify()
        try:
            async with asyncio.timeout(grace):
                await self._empty.wait()
        except TimeoutError:
            logger.warning("gateway.drain_timeout", sessions=len(self._by_id))

    def resync(self) -> None:
        """Close every session so its client resumes: events may have been lost on the way here."""
        logger.warning("gateway.resync", sessions=len(self._by_id))
        for local in list(self._by_id.values()):
            local.session.close(CloseCode.RESYNC, RESYNC_REASON, flush=True)
            local.notify()


class _LazyInfo:
    """A frame's `FrameInfo`, decoded at most once and only if some session needs it."""

    __slots__ = ("_done", "_frame", "_info", "_peek_frame")

    def __init__(self, frame: bytes, peek_frame: PeekFrame) -> None:
        self._frame = frame
        self._peek_frame = peek_frame
        self._info: FrameInfo | None = None
        self._done = False

    def get(self) -> FrameInfo | None:
        if not self._done:
            self._info = self._peek_frame(self._frame)
            self._done = True
        return self._info
