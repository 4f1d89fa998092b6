"""Coalescing: changes gather for a second, then each watcher gets one frame naming each changed contact once.

`PendingChanges` is the bounded buffer of users whose presence changed since the last flush (a user
flapping ten times is one entry); `due` says when the next flush may go, at most one per `interval`.
`plan` turns the users that changed into frames: for each watcher (a member of a chat of a changed user,
never the user themself), the changed users they share a chat with, each once, in the order they changed;
watchers whose frames would be alike share one (one delivery item for many users). Its cost is the
memberships of the changed users' chats plus the size of the frames, never a pairwise join.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class PendingChanges:
    """The users whose presence changed since the last flush, in first-change order, at most `capacity`."""

    capacity: int
    interval: float = 1.0
    last_flush: float = float("-inf")
    _users: dict[str, None] = field(default_factory=dict)

    def add(self, user_id: str) -> bool:
        """Note a change; False (nothing noted) when full and the user is not already pending."""
        if user_id in self._users:
            return True
        if len(self._users) >= self.capacity:
            return False
        self._users[user_id] = None
        return True

    @property
    def full(self) -> bool:
        return len(self._users) >= self.capacity

    def __len__(self) -> int:
        return len(self._users)

    def due(self, now: float) -> float:
        """Seconds until the next flush may go (0: now)."""
        return max(0.0, self.last_flush + self.interval - now)

    def take(self, now: float) -> list[str]:
        """The pending users, emptied, if a flush is due; else nothing (and nothing is emptied)."""
        if self.due(now) > 0:
            return []
        self.last_flush = now
        users, self._users = list(self._users), {}
        return users


@dataclass(frozen=True, slots=True)
class Update:
    """One frame: these changed users, for these watchers."""

    users: tuple[str, ...]
    watchers: tuple[str, ...]


def plan(
    changed: Sequence[str], chats_of: Mapping[str, Collection[str]], members_of: Mapping[str, Collection[str]]
) -> list[Update]:
    """Which watcher hears which changed users: one frame per watcher, each user at most once in it."""
    heard: dict[str, dict[str, None]] = {}
    for user in dict.fromkeys(changed):  # in change order, so each watcher's users come in that order too
        for chat in chats_of.get(user, ()):
            for watcher in members_of.get(chat, ()):
                if watcher != user:
                    heard.setdefault(watcher, {})[user] = None
    frames: dict[tuple[str, ...], list[str]] = {}
    for watcher, users in heard.items():
        frames.setdefault(tuple(users), []).append(watcher)
    return [Update(users, tuple(watchers)) for users, watchers in frames.items()]
