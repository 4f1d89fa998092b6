"""What the presence use cases need from outside: the shared state, the chat projection, the settings
table, and a way to send frames to users' connections."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from parlour.presence.domain.model import LiveSession, Presence, Seen


@dataclass(frozen=True, slots=True)
class GatewaySession:
    """A session recorded under the gateway that holds it."""

    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class Opened:
    """A session opened on a gateway (`session.opened`)."""

    user_id: str
    session_id: str
    gateway_id: str


@dataclass(frozen=True, slots=True)
class Closed:
    """A session closed, or its gateway died (`session.closed`, the sweep)."""

    user_id: str
    session_id: str
    gateway_id: str


@dataclass(frozen=True, slots=True)
class Activity:
    """The client said whether its person is idle (`activity`)."""

    user_id: str
    session_id: str
    idle: bool


SessionChange = Opened | Closed | Activity


@dataclass(slots=True)
class StateChanges:
    """What one batch of session changes writes, in one round trip: sessions recorded (opened, or their
    idle flag changed), sessions closed (each with its gateway), and users' new presence."""

    recorded: list[tuple[str, str, LiveSession]] = field(default_factory=list)
    closed: list[tuple[str, str, str]] = field(default_factory=list)
    presence: dict[str, Presence] = field(default_factory=dict)


class PresenceState(ABC):
    """The state every presence process shares (the key-value store): each user's sessions, their
    presence and hidden flag, and which gateways hold sessions."""

    @abstractmethod
    async def sessions_of(self, user_ids: Collection[str]) -> dict[str, dict[str, LiveSession | None]]:
        """Each user's recorded sessions by id, in one round trip; None marks one closed a short while
        ago (a tombstone, so a late `session.opened` cannot bring it back)."""

    @abstractmethod
    async def apply(self, changes: StateChanges) -> None:
        """Write a batch's changes in one round trip: a recorded session also under its gateway, a closed
        one replaced by a tombstone and dropped from its gateway's sessions."""

    @abstractmethod
    async def presence(self, user_ids: Sequence[str]) -> dict[str, tuple[Presence, bool]]:
        """Each user's presence and hidden flag (never seen: offline, not hidden); one round trip."""

    @abstractmethod
    async def set_hidden(self, user_ids: Collection[str], hidden: bool) -> None:
        """Mirror the users' privacy setting."""

    @abstractmethod
    async def gateways(self) -> tuple[set[str], set[str]]:
        """(gateways that hold recorded sessions, gateways whose lease is live)."""

    @abstractmethod
    async def sessions_of_gateway(self, gateway_id: str) -> list[GatewaySession]:
        """The sessions recorded under a gateway."""

    @abstractmethod
    async def forget_gateway(self, gateway_id: str) -> None:
        """Drop a dead gateway whose sessions have all been closed."""


class Contacts(ABC):
    """Presence's own projection of chat membership (from `chat.members_changed`)."""

    @abstractmethod
    async def apply(self, chat_id: str, version: int, member_ids: Collection[str]) -> set[str] | None:
        """Replace the chat's members if `version` is newer than the one held; returns the members
        added (all of them for a new chat), or None when the change was not newer."""

    @abstractmethod
    async def among(self, user_id: str, candidates: Collection[str]) -> set[str]:
        """The candidates who share at least one chat with the user."""

    @abstractmethod
    async def chats_of(self, user_ids: Collection[str]) -> dict[str, set[str]]:
        """The chats of each user (users in none are left out)."""

    @abstractmethod
    async def members_of(self, chat_ids: Collection[str]) -> dict[str, set[str]]:
        """The members of each chat (chats without members are left out)."""


class PrivacySettings(ABC):
    """The privacy setting of each user (presence's own table)."""

    @abstractmethod
    async def hidden(self, user_id: str) -> bool:
        """Whether the user hides their presence (False if never set)."""

    @abstractmethod
    async def set_hidden(self, user_id: str, hidden: bool) -> None:
        """Store the setting."""

    @abstractmethod
    async def hiding(self) -> list[str]:
        """Every user who hides their presence."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """These users' presence, for one session of the user (every session of theirs when None)."""

    user_id: str
    session_id: str | None
    seen: Mapping[str, Seen]


class Frames(ABC):
    """Sends `presence` frames to users' connections."""

    @abstractmethod
    async def snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        """One frame for each snapshot, published together."""

    @abstractmethod
    async def updates(self, updates: Sequence[tuple[Sequence[str], Mapping[str, Seen]]]) -> None:
        """For each (watchers, seen users) one frame to every session of those watchers."""

    @abstractmethod
    async def statuses(self, changes: Mapping[str, Presence]) -> None:
        """Tell the other services (notifications) these users' status now, in one publication."""
