"""The auth use cases: sign up, log in, refresh, log out, look users up."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

import structlog

from parlour.auth.application.ports import (
    AccessTokenIssuer,
    AvatarEncoder,
    PasswordHasher,
    StoredAvatar,
    UnitOfWork,
    UserEvents,
)
from parlour.auth.domain.errors import (
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
    SessionNotFound,
    SessionRevoked,
    TooManyLoginAttempts,
    WrongPassword,
)
from parlour.auth.domain.model import (
    USER_AGENT_MAX_LENGTH,
    RefreshToken,
    RevocationReason,
    Session,
    User,
    check_password,
    normalize_display_name,
    normalize_username,
)
from parlour.common.clock import Clock
from parlour.common.errors import InvalidInput, NotFound, Unavailable
from parlour.common.ratelimit import GrowingDelay, RateLimiter
from parlour.common.revocations import Revocations

logger = structlog.get_logger(__name__)

SEARCH_LIMIT_MAX = 50
# A username that cannot exist, hashed once so unknown users cost a login as much as known ones.
_TIMING_DECOY_PASSWORD = "decoy-password-for-unknown-users"


@dataclass(frozen=True, slots=True)
class SignUp:
    username: str
    password: str
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class LogIn:
    username: str
    password: str
    client_address: str
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class ChangePassword:
    user_id: str
    session_id: str  # the session asking, which stays open; every other one ends
    current_password: str
    new_password: str
    client_address: str


@dataclass(frozen=True, slots=True)
class DeleteAccount:
    user_id: str
    session_id: str
    password: str
    client_address: str


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_username_address: int  # attempts on one username from one address, per window
    per_address: int  # attempts from one address, whatever the usernames, per window
    window_seconds: float


def hash_refresh_token(token: str) -> str:
    """How refresh tokens are stored: only their SHA-256 (they are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


class AuthHandlers:
    """One method per auth command or query; ports come in through the constructor."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        hasher: PasswordHasher,
        issuer: AccessTokenIssuer,
        events: UserEvents,
        limiter: RateLimiter,
        limits: LoginLimits,
        delay: GrowingDelay,
        clock: Clock,
        refresh_ttl: timedelta,
        revocations: Revocations,
        avatars: AvatarEncoder,
    ) -> None:
        self._revocations = revocations
        self._avatars = avatars
        self._uow = unit_of_work
        self._hasher = hasher
        self._issuer = issuer
        self._events = events
        self._limiter = limiter
        self._limits = limits
        self._delay = delay
        self._clock = clock
        self._refresh_ttl = refresh_ttl
        self._decoy_hash: str | None = None

    async def sign_up(self, command: SignUp) -> User:
        """Create a user; raises `UsernameTaken`, `InvalidUsername`, `InvalidPassword`."""
        username = normalize_username(command.username)
        check_password(command.password)
        display_name = normalize_display_name(command.display_name, username)
        user = User(str(uuid.uuid4()), username, display_name, self._clock.utcnow())
        password_hash = await self._hasher.hash(command.password)
        async with self._uow() as uow:
            await uow.users.add(user, password_hash)
            await uow.commit()
        try:
            await self._events.registered(user)
        except Unavailable:
            # The user exists; services that missed the event look the user up from auth on first sight.
            logger.warning("user.registered not published", user_id=user.id, exc_info=True)
        return user

    async def log_in(self, command: LogIn) -> TokenPair:
        """Open a session; the same error for an unknown user and a wrong password.

        Limited per (username, address) and per address; a username's recent failures slow every login
        to it down (from any address) rather than lock it: the right password always gets in.
        """
        name = command.username.strip().lower()[:64]
        await self._limit_login(command, name)
        await self._delay.wait(name)
        try:
            return await self._check_credentials(command)
        except InvalidCredentials:
            await self._delay.failed(name)
            raise

    async def _check_credentials(self, command: LogIn) -> TokenPair:
        try:
            username = normalize_username(command.username)
        except InvalidInput:
            username = None
        async with self._uow() as uow:
            credentials = await uow.users.credentials(username) if username else None
        if credentials is None:
            await self._hasher.verify(await self._decoy(), command.password)
            raise InvalidCredentials()
        if not await self._hasher.verify(credentials.password_hash, command.password):
            raise InvalidCredentials()
        return await self._open_session(credentials.user.id, command.user_agent)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token; presenting a used one revokes its whole session."""
        now = self._clock.utcnow()
        token_hash = hash_refresh_token(refresh_token)
        async with self._uow() as uow:
            token = await uow.sessions.token(token_hash)
            session = await uow.sessions.get(token.session_id) if token else None
            if token is None or session is None or now >= token.expires_at:
                raise InvalidRefreshToken()
            if not session.is_active(now):
                raise SessionRevoked()
            if token.used_at is not None or not await uow.sessions.use_token(token_hash, now):
                await uow.sessions.save(session.revoke(now, RevocationReason.REFRESH_TOKEN_REUSED))
                await uow.commit()
                await self._revocations.revoke([session.id])
                raise RefreshTokenReused()
            pair = await self._issue_pair(uow, session)
            await uow.sessions.save(replace(session, last_used_at=now))
            await uow.commit()
        return pair

    async def sessions(self, user_id: str) -> list[Session]:
        """The user's open sessions (neither ended nor expired), newest first."""
        async with self._uow() as uow:
            return await uow.sessions.active(user_id, self._clock.utcnow())

    async def end_session(self, user_id: str, session_id: str) -> None:
        """End one of the user's sessions (another device's, or this one); `SessionNotFound` if it is not
        theirs, so nobody learns whether someone else's session id exists."""
        now = self._clock.utcnow()
        async with self._uow() as uow:
            session = await uow.sessions.get(session_id)
            if session is None or session.user_id != user_id:
                raise SessionNotFound()
            await uow.sessions.save(session.revoke(now, RevocationReason.ENDED_BY_USER))
            await uow.commit()
        await self._revocations.revoke([session_id])

    async def end_other_sessions(self, user_id: str, current_session_id: str) -> int:
        """End every session of the user but the caller's; returns how many."""
        now = self._clock.utcnow()
        async with self._uow() as uow:
            revoked = await uow.sessions.revoke_all(
                user_id, now, RevocationReason.ENDED_BY_USER, keep=current_session_id
            )
            await uow.commit()
        await self._revocations.revoke(revoked)
        return len(revoked)

    async def change_password(self, command: ChangePassword) -> int:
        """Replace the password after checking the current one (`WrongPassword`); every other session of
        the user ends, the caller's stays. Limited like logins. Returns how many sessions ended."""
        await self._limit_password_check(command.user_id, command.client_address)
        check_password(command.new_password)
        current_hash, _ = await self._password_and_user(command.user_id)
        if not await self._hasher.verify(current_hash, command.current_password):
            raise WrongPassword()
        new_hash = await self._hasher.hash(command.new_password)
        now = self._clock.utcnow()
        async with self._uow() as uow:
            await uow.users.set_password_hash(command.user_id, new_hash)
            revoked = await uow.sessions.revoke_all(
                command.user_id, now, RevocationReason.PASSWORD_CHANGED, keep=command.session_id
            )
            await uow.commit()
        await self._revocations.revoke(revoked)
        return len(revoked)

    async def delete_account(self, command: DeleteAccount) -> None:
        """Delete the caller's account after checking the password (`WrongPassword`; limited like logins):
        the user becomes a tombstone (`User.delete`), every session ends, and the other services hear of it
        (`user.deleted`). A service that misses the event still sees "Deleted user" when it looks them up."""
        await self._limit_password_check(command.user_id, command.client_address)
        current_hash, user = await self._password_and_user(command.user_id)
        if not await self._hasher.verify(current_hash, command.password):
            raise WrongPassword()
        deleted = user.delete(self._clock.utcnow())
        async with self._uow() as uow:
            await uow.users.delete(deleted)
            revoked = await uow.sessions.revoke_all(user.id, self._clock.utcnow(), RevocationReason.ACCOUNT_DELETED)
            await uow.commit()
        await self._revocations.revoke(dict.fromkeys([*revoked, command.session_id]))
        try:
            await self._events.deleted(deleted)
        except Unavailable:
            logger.warning("user.deleted not published", user_id=user.id, exc_info=True)

    async def log_out(self, session_id: str) -> None:
        """End one session: its refresh tokens, access tokens and open sockets stop working."""
        now = self._clock.utcnow()
        async with self._uow() as uow:
            session = await uow.sessions.get(session_id)
            if session is not None:
                await uow.sessions.save(session.revoke(now, RevocationReason.LOGOUT))
                await uow.commit()
        # After the commit, and again on a retried logout: the session ends even if this write failed once.
        await self._revocations.revoke([session_id])

    async def log_out_everywhere(self, user_id: str, current_session_id: str) -> int:
        """End every session of a user (the caller's included); returns how many were active."""
        async with self._uow() as uow:
            revoked = await uow.sessions.revoke_all(user_id, self._clock.utcnow(), RevocationReason.LOGOUT_ALL)
            await uow.commit()
        await self._revocations.revoke(dict.fromkeys([*revoked, current_session_id]))
        return len(revoked)

    async def restore_revocations(self) -> int:
        """If the key-value store lost the revocations (emptied by a restart), write again every session
        revoked within their lifetime, for what is left of it; returns how many (0 when nothing was lost)."""
        if await self._revocations.intact():
            return 0
        now = self._clock.utcnow()
        lifetime = self._revocations.ttl_seconds
        async with self._uow() as uow:
            revoked = await uow.sessions.revoked_since(now - timedelta(seconds=lifetime))
        for session_id, revoked_at in revoked:
            left = lifetime - (now - revoked_at).total_seconds()
            if left > 0:
                await self._revocations.revoke([session_id], ttl=left)
        await self._revocations.mark_intact()
        return len(revoked)

    async def get_user(self, user_id: str) -> User:
        """A user by id; `NotFound` if there is none."""
        async with self._uow() as uow:
            return await _existing(uow, user_id)

    async def rename(self, user_id: str, display_name: str) -> User:
        """Change the user's display name (trimmed, NFC); raises `InvalidDisplayName`, or `NotFound` if
        the user is gone. Other services hear of it (`user.renamed`); one that misses the event keeps the
        old name until the user's next change."""
        async with self._uow() as uow:
            current = await _existing(uow, user_id)
            user = replace(current, display_name=normalize_display_name(display_name, current.username))
            await uow.users.rename(user.id, user.display_name)
            await uow.commit()
        try:
            await self._events.renamed(user)
        except Unavailable:
            logger.warning("user.renamed not published", user_id=user.id, exc_info=True)
        return user

    async def set_avatar(self, user_id: str, data: bytes) -> User:
        """Take `data` as the user's picture, re-encoded (`InvalidAvatar`, `AvatarTooLarge`); its tag is
        its content's hash, so the same picture twice keeps its tag (and every cache of it)."""
        image = await self._avatars.encode(data)
        avatar = StoredAvatar(image, hashlib.sha256(image).hexdigest()[:32])
        async with self._uow() as uow:
            user = await _existing(uow, user_id)
            await uow.users.set_avatar(user_id, avatar)
            await uow.commit()
        return replace(user, avatar_etag=avatar.etag)

    async def remove_avatar(self, user_id: str) -> User:
        """Remove the user's picture (none: no change)."""
        async with self._uow() as uow:
            user = await _existing(uow, user_id)
            await uow.users.set_avatar(user_id, None)
            await uow.commit()
        return replace(user, avatar_etag=None)

    async def avatar(self, user_id: str) -> StoredAvatar:
        """The user's picture; `NotFound` without one."""
        async with self._uow() as uow:
            avatar = await uow.users.avatar(user_id)
        if avatar is None:
            raise NotFound("This user has no picture.")
        return avatar

    async def search_users(self, query: str, limit: int) -> list[User]:
        """Users whose username starts with `query` (case-insensitive), at most `SEARCH_LIMIT_MAX`."""
        prefix = query.strip().lower()
        if not prefix:
            return []
        async with self._uow() as uow:
            return await uow.users.search(prefix, min(max(limit, 1), SEARCH_LIMIT_MAX))

    async def _limit_login(self, command: LogIn, name: str) -> None:
        window = self._limits.window_seconds
        await self._limiter.hit(
            f"user:{name}:address:{command.client_address}",
            limit=self._limits.per_username_address,
            window=window,
            error=TooManyLoginAttempts,
        )
        await self._limiter.hit(
            f"address:{command.client_address}",
            limit=self._limits.per_address,
            window=window,
            error=TooManyLoginAttempts,
        )

    async def _limit_password_check(self, user_id: str, client_address: str) -> None:
        # A signed-in caller confirming with their password: guesses count like logins, per user and address.
        await self._limiter.hit(
            f"password:{user_id}:address:{client_address}",
            limit=self._limits.per_username_address,
            window=self._limits.window_seconds,
            error=TooManyLoginAttempts,
        )

    async def _password_and_user(self, user_id: str) -> tuple[str, User]:
        async with self._uow() as uow:
            password_hash = await uow.users.password_hash(user_id)
            user = await uow.users.get(user_id)
        if password_hash is None or user is None:
            raise NotFound("No such user.")
        return password_hash, user

    async def _open_session(self, user_id: str, user_agent: str | None) -> TokenPair:
        now = self._clock.utcnow()
        device = user_agent[:USER_AGENT_MAX_LENGTH] if user_agent else None
        session = Session(str(uuid.uuid4()), user_id, now, now + self._refresh_ttl, user_agent=device, last_used_at=now)
        async with self._uow() as uow:
            await uow.sessions.add(session)
            pair = await self._issue_pair(uow, session)
            await uow.commit()
        return pair

    async def _issue_pair(self, uow: UnitOfWork, session: Session) -> TokenPair:
        now = self._clock.utcnow()
        refresh_token = secrets.token_urlsafe(32)
        expires_at = min(now + self._refresh_ttl, session.expires_at)
        await uow.sessions.add_token(RefreshToken(hash_refresh_token(refresh_token), session.id, now, expires_at))
        access = self._issuer.issue(session.user_id, session.id)
        refresh_life = int((expires_at - now).total_seconds())
        return TokenPair(access.token, refresh_token, access.expires_in, refresh_life)

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await self._hasher.hash(_TIMING_DECOY_PASSWORD)
        return self._decoy_hash


async def _existing(uow: UnitOfWork, user_id: str) -> User:
    user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("No such user.")
    return user
