"""What the decision half of notifications needs from outside (the channels' `Dispatcher` is in ports.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence

from parlour.notifications.domain.rule import Pending

# A (chat id, user id) pair: the key of everything notifications keeps per member of a chat.
Key = tuple[str, str]


class PendingStore(ABC):
    """What each member has not been told yet, per chat, durable (written before a bus message is acked)."""

    @abstractmethod
    async def change(self, keys: Collection[Key], change: Callable[[dict[Key, Pending]], Sequence[Pending]]) -> None:
        """Read the states of `keys` (a blank `Pending` where there is none) so that nobody else changes
        them meanwhile, write back what `change` returns, and commit."""

    @abstractmethod
    async def claim_due(self, now: float, limit: int, until: float) -> list[Pending]:
        """Up to `limit` waiting states due by `now`, oldest first, claimed: their `due_at` becomes `until`,
        committed, so that no other process takes them meanwhile and a process that dies holding them
        hands them on at `until` (rows another process is claiming are skipped, never waited for)."""

    @abstractmethod
    async def next_due(self) -> float | None:
        """When the earliest waiting state is due (None: nothing waits)."""


class Memberships(ABC):
    """Who is in each chat and how far each member has read (messaging's events, projected)."""

    @abstractmethod
    async def apply(self, chat_id: str, version: int, member_ids: Collection[str]) -> None:
        """The chat's members are these at membership `version` (an older version changes nothing)."""

    @abstractmethod
    async def advance(self, moves: Sequence[tuple[str, str, int]]) -> None:
        """Move each (chat, member, seq) cursor forward (never back; a non-member's move is ignored)."""

    @abstractmethod
    async def read_seqs(self, keys: Collection[Key]) -> dict[Key, int]:
        """The read cursor of each (chat, member); a pair that is not a membership is left out."""


class Preferences(ABC):
    """Each user's choices: the body preview, the muted chats."""

    @abstractmethod
    async def previews(self, user_ids: Collection[str]) -> dict[str, bool]:
        """Whether each user wants the body shown (True for one who never chose)."""

    @abstractmethod
    async def set_preview(self, user_id: str, preview: bool) -> None:
        """Record the user's choice."""

    @abstractmethod
    async def muted(self, keys: Collection[Key]) -> set[Key]:
        """Which of these (chat, member) pairs are muted."""

    @abstractmethod
    async def mutes(self, user_id: str) -> list[str]:
        """The ids of the chats the user muted, sorted."""

    @abstractmethod
    async def mute(self, user_id: str, chat_id: str) -> None:
        """Mute the chat for the user (again: no change)."""

    @abstractmethod
    async def unmute(self, user_id: str, chat_id: str) -> None:
        """Unmute it (not muted: no change)."""


class Directory(ABC):
    """Users' display names (auth's `user.registered`, projected)."""

    @abstractmethod
    async def record(self, users: Mapping[str, str]) -> None:
        """Keep these display names by user id."""

    @abstractmethod
    async def names(self, user_ids: Collection[str]) -> dict[str, str]:
        """The display names of the users known (others are left out)."""


class Statuses(ABC):
    """The latest presence status of each user (presence's `presence.changed`)."""

    @abstractmethod
    async def record(self, statuses: Mapping[str, str]) -> None:
        """Keep these statuses (online, away, offline) by user id."""

    @abstractmethod
    async def of(self, user_ids: Collection[str]) -> dict[str, str]:
        """Each user's status; offline for a user never heard of."""
