"""The rules of presence: a user's status from their live sessions, and what a watcher may see of it.

States of a user (docs/subsystems/presence.md)::

    offline ──a session opens──▶ online ──every live session idle──▶ away
       ▲                          │  ▲                                 │
       └──last session closes─────┘  └──────any session active─────────┘
          (or its gateway's lease lapses; `last_seen` = then)

A session starts active. `hidden` is the user's privacy setting: watchers then see offline with no
`last_seen`, whatever the truth; the user themself always sees the truth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache


class Status(StrEnum):
    ONLINE = "online"  # at least one live session, not all of them idle
    AWAY = "away"  # every live session idle
    OFFLINE = "offline"  # no live session


@dataclass(frozen=True, slots=True)
class LiveSession:
    """One open WebSocket session of a user, on the gateway that holds it."""

    gateway_id: str
    idle: bool = False


@dataclass(frozen=True, slots=True)
class Presence:
    """What presence knows of one user: the status and when they were last seen online (epoch seconds)."""

    status: Status = Status.OFFLINE
    last_seen: float | None = None


@dataclass(frozen=True, slots=True)
class Seen:
    """A user's presence as one watcher sees it."""

    status: Status
    last_seen: float | None


NEVER_SEEN = Presence()


def status_of(sessions: Iterable[LiveSession]) -> Status:
    """Online if any session is active, away if every one is idle, offline if there is none."""
    any_session = False
    for session in sessions:
        if not session.idle:
            return Status.ONLINE
        any_session = True
    return Status.AWAY if any_session else Status.OFFLINE


def after(previous: Presence, sessions: Iterable[LiveSession], now: float) -> Presence:
    """The presence once the sessions are these: going offline now stamps `last_seen`."""
    status = status_of(sessions)
    if status is Status.OFFLINE and previous.status is not Status.OFFLINE:
        return Presence(status, now)
    return Presence(status, previous.last_seen)


@lru_cache(maxsize=4096)  # pure, and asked for every contact of every snapshot: a few distinct answers
def seen(presence: Presence, *, hidden: bool) -> Seen:
    """What a watcher sees: nothing but offline when hidden, `last_seen` only when offline."""
    if hidden:
        return Seen(Status.OFFLINE, None)
    return Seen(presence.status, presence.last_seen if presence.status is Status.OFFLINE else None)
