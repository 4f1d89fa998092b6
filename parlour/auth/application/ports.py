"""What the auth use cases need from the outside world."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from parlour.auth.domain.model import RefreshToken, RevocationReason, Session, User
from parlour.common.unit_of_work import UnitOfWork as BaseUnitOfWork


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user with the password hash to check a login against."""

    user: User
    password_hash: str


@dataclass(frozen=True, slots=True)
class StoredAvatar:
    """A user's picture as served: WebP bytes and their entity tag."""

    image: bytes
    etag: str


class UserRepository(ABC):
    """Users by id and by username."""

    @abstractmethod
    async def add(self, user: User, password_hash: str) -> None:
        """Store a new user; raises `UsernameTaken` if the username exists."""

    @abstractmethod
    async def credentials(self, username: str) -> Credentials | None:
        """The user with this (normalised) username and their password hash; None once deleted."""

    @abstractmethod
    async def get(self, user_id: str) -> User | None:
        """The user with this id."""

    @abstractmethod
    async def search(self, prefix: str, limit: int) -> list[User]:
        """Users whose username starts with `prefix`, by username; deleted ones are not found."""

    @abstractmethod
    async def rename(self, user_id: str, display_name: str) -> None:
        """Store the user's new display name."""

    @abstractmethod
    async def delete(self, user: User) -> None:
        """Store the user as deleted (`User.delete`), and forget their password hash."""

    @abstractmethod
    async def set_avatar(self, user_id: str, avatar: StoredAvatar | None) -> None:
        """Store the user's picture (None: remove it), and its tag on the user."""

    @abstractmethod
    async def avatar(self, user_id: str) -> StoredAvatar | None:
        """The user's picture, if they have one."""

    @abstractmethod
    async def password_hash(self, user_id: str) -> str | None:
        """The user's password hash, None if there is no such user (or they were deleted)."""

    @abstractmethod
    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Store the user's new password hash."""


class SessionRepository(ABC):
    """Sessions and their refresh tokens."""

    @abstractmethod
    async def add(self, session: Session) -> None:
        """Store a new session."""

    @abstractmethod
    async def get(self, session_id: str) -> Session | None:
        """The session with this id."""

    @abstractmethod
    async def save(self, session: Session) -> None:
        """Store a session's new state (revocation, last use)."""

    @abstractmethod
    async def active(self, user_id: str, now: datetime) -> list[Session]:
        """The user's sessions neither revoked nor expired at `now`, newest first."""

    @abstractmethod
    async def revoke_all(
        self, user_id: str, now: datetime, reason: RevocationReason, keep: str | None = None
    ) -> list[str]:
        """Revoke every active session of a user but `keep`; returns their ids."""

    @abstractmethod
    async def revoked_since(self, since: datetime) -> list[tuple[str, datetime]]:
        """(session id, when it was revoked) of every session revoked at or after `since`."""

    @abstractmethod
    async def add_token(self, token: RefreshToken) -> None:
        """Store a refresh token (its hash)."""

    @abstractmethod
    async def token(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash."""

    @abstractmethod
    async def use_token(self, token_hash: str, now: datetime) -> bool:
        """Mark the token used if it was not; returns False if it already was (atomic)."""


class UnitOfWork(BaseUnitOfWork):
    """One transaction over the auth repositories; rolled back unless committed."""

    users: UserRepository
    sessions: SessionRepository


class PasswordHasher(ABC):
    """Slow, salted password hashing; implementations keep it off the event loop."""

    @abstractmethod
    async def hash(self, password: str) -> str:
        """A self-describing hash of `password`."""

    @abstractmethod
    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


class AccessTokenIssuer(ABC):
    """Signs access tokens with the newest signing key."""

    @abstractmethod
    def issue(self, user_id: str, session_id: str) -> AccessToken:
        """A signed access token for this user and session."""


class AvatarEncoder(ABC):
    """Turns an uploaded picture into the one served; off the event loop."""

    @abstractmethod
    async def encode(self, data: bytes) -> bytes:
        """The picture re-encoded; raises `InvalidAvatar` or `AvatarTooLarge`."""


class UserEvents(ABC):
    """Tells the other services about users."""

    @abstractmethod
    async def registered(self, user: User) -> None:
        """A user signed up."""

    @abstractmethod
    async def renamed(self, user: User) -> None:
        """A user changed their display name."""

    @abstractmethod
    async def deleted(self, user: User) -> None:
        """A user deleted their account."""
