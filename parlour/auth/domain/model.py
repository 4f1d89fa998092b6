"""Users and sessions, and the rules they obey. Pure: no I/O, no framework."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from parlour.auth.domain.errors import InvalidDisplayName, InvalidPassword, InvalidUsername

USERNAME_MIN_LENGTH = 3
USERNAME_MAX_LENGTH = 32
USERNAME_PATTERN = re.compile(rf"[a-z0-9_.-]{{{USERNAME_MIN_LENGTH},{USERNAME_MAX_LENGTH}}}")
PASSWORD_MIN_LENGTH = 8
# Bounded so that hashing cost cannot be driven up by a huge password.
PASSWORD_MAX_LENGTH = 128
DISPLAY_NAME_MAX_LENGTH = 64
USER_AGENT_MAX_LENGTH = 256
# An avatar as uploaded (its bytes are bounded with the route: `AVATAR_MAX_BYTES`, common/http/limits.py):
# at most this many pixels (refused from the image's header, before it is decoded); kept re-encoded as WebP
# of at most `AVATAR_SIDE` pixels a side.
AVATAR_MAX_PIXELS = 25_000_000
AVATAR_SIDE = 256
AVATAR_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})
DELETED_USER_NAME = "Deleted user"

# (what a User-Agent contains, what to call it), first match wins: Edge and Opera also say "Chrome",
# Chrome also says "Safari", so the more specific names come first.
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def normalize_username(raw: str) -> str:
    """The canonical form of a username: case-insensitive, so stored lower-case. Raises if invalid."""
    username = raw.strip().lower()
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidUsername()
    return username


def check_password(password: str) -> None:
    """Raise `InvalidPassword` unless `password` meets the rules."""
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH or len(set(password)) == 1:
        raise InvalidPassword()


def normalize_display_name(raw: str | None, username: str) -> str:
    """The display name to keep: trimmed and NFC-normalised, defaulting to the username."""
    if raw is None:
        return username
    name = unicodedata.normalize("NFC", raw.strip())
    if not 1 <= len(name) <= DISPLAY_NAME_MAX_LENGTH or not name.isprintable():
        raise InvalidDisplayName()
    return name


def describe_device(user_agent: str | None) -> str:
    """A person's name for the device a session was opened on ("Firefox on Linux"), from its User-Agent;
    a program's own token ("python-httpx/0.28") when it is not a browser."""
    if not user_agent:
        return "Unknown device"
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or user_agent.split(" ", 1)[0][:64]


@dataclass(frozen=True, slots=True)
class User:
    """A person who can log in; once deleted, a tombstone that keeps the id (their messages stay theirs) and
    the username (nobody else can take it and be taken for them), under `DELETED_USER_NAME`."""

    id: str
    username: str
    display_name: str
    created_at: datetime
    deleted_at: datetime | None = None
    avatar_etag: str | None = None  # the current avatar's (its content hash), None without one

    def delete(self, now: datetime) -> User:
        """The user, deleted: what others see of them from now on (no picture either)."""
        return replace(self, display_name=DELETED_USER_NAME, deleted_at=self.deleted_at or now, avatar_etag=None)


class RevocationReason(StrEnum):
    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    ENDED_BY_USER = "ended_by_user"  # from another of the user's sessions
    PASSWORD_CHANGED = "password_changed"
    ACCOUNT_DELETED = "account_deleted"


@dataclass(frozen=True, slots=True)
class Session:
    """One login of a user on one device; its refresh tokens rotate, it ends on revocation or expiry."""

    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: RevocationReason | None = None
    user_agent: str | None = None  # as the login sent it, cut to `USER_AGENT_MAX_LENGTH`
    last_used_at: datetime | None = None  # the last login or refresh: within an access token's life of true

    def is_active(self, now: datetime) -> bool:
        """Whether the session may still refresh."""
        return self.revoked_at is None and now < self.expires_at

    def revoke(self, now: datetime, reason: RevocationReason) -> Session:
        """The session, revoked (keeping the first revocation if already revoked)."""
        if self.revoked_at is not None:
            return self
        return replace(self, revoked_at=now, revoked_reason=reason)


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """A stored refresh token: only its hash is kept; it may be used once."""

    token_hash: str
    session_id: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
