"""SQL repositories of the auth service, on SQLAlchemy Core (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parlour.auth.application.ports import (
    Credentials,
    SessionRepository,
    StoredAvatar,
    UnitOfWork,
    UserRepository,
)
from parlour.auth.domain.errors import UsernameTaken
from parlour.auth.domain.model import RefreshToken, RevocationReason, Session, User
from parlour.auth.infrastructure.tables import avatars, refresh_tokens, sessions, users
from parlour.common.db import SqlUnitOfWork


def _user(row: Any) -> User:
    return User(row.id, row.username, row.display_name, row.created_at, row.deleted_at, row.avatar_etag)


def _session(row: Any) -> Session:
    reason = RevocationReason(row.revoked_reason) if row.revoked_reason else None
    return Session(
        row.id, row.user_id, row.created_at, row.expires_at, row.revoked_at, reason, row.user_agent, row.last_used_at
    )


class SqlUserRepository(UserRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, user: User, password_hash: str) -> None:
        statement = insert(users).values(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            password_hash=password_hash,
            created_at=user.created_at,
        )
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(statement)
        except IntegrityError as exc:
            raise UsernameTaken() from exc

    async def credentials(self, username: str) -> Credentials | None:
        query = select(users).where(users.c.username == username, users.c.deleted_at.is_(None))
        row = (await self._connection.execute(query)).first()
        return Credentials(_user(row), row.password_hash) if row else None

    async def get(self, user_id: str) -> User | None:
        row = (await self._connection.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def search(self, prefix: str, limit: int) -> list[User]:
        query = (
            select(users)
            .where(users.c.username.startswith(prefix, autoescape=True), users.c.deleted_at.is_(None))
            .order_by(users.c.username)
            .limit(limit)
        )
        return [_user(row) for row in await self._connection.execute(query)]

    async def rename(self, user_id: str, display_name: str) -> None:
        await self._connection.execute(update(users).where(users.c.id == user_id).values(display_name=display_name))

    async def delete(self, user: User) -> None:
        # The hash goes: nothing can ever log in as the tombstone. So does the picture.
        await self.set_avatar(user.id, None)
        await self._connection.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(display_name=user.display_name, deleted_at=user.deleted_at, password_hash="")
        )

    async def set_avatar(self, user_id: str, avatar: StoredAvatar | None) -> None:
        await self._connection.execute(avatars.delete().where(avatars.c.user_id == user_id))
        if avatar is not None:
            row = {"user_id": user_id, "image": avatar.image, "etag": avatar.etag}
            await self._connection.execute(insert(avatars).values(**row))
        etag = avatar.etag if avatar is not None else None
        await self._connection.execute(update(users).where(users.c.id == user_id).values(avatar_etag=etag))

    async def avatar(self, user_id: str) -> StoredAvatar | None:
        query = select(avatars.c.image, avatars.c.etag).where(avatars.c.user_id == user_id)
        row = (await self._connection.execute(query)).first()
        return StoredAvatar(row.image, row.etag) if row else None

    async def password_hash(self, user_id: str) -> str | None:
        query = select(users.c.password_hash).where(users.c.id == user_id, users.c.deleted_at.is_(None))
        return (await self._connection.execute(query)).scalar_one_or_none()

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._connection.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


class SqlSessionRepository(SessionRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, session: Session) -> None:
        await self._connection.execute(
            insert(sessions).values(
                id=session.id,
                user_id=session.user_id,
                created_at=session.created_at,
                expires_at=session.expires_at,
                user_agent=session.user_agent,
                last_used_at=session.last_used_at,
            )
        )

    async def get(self, session_id: str) -> Session | None:
        row = (await self._connection.execute(select(sessions).where(sessions.c.id == session_id))).first()
        return _session(row) if row else None

    async def save(self, session: Session) -> None:
        await self._connection.execute(
            update(sessions)
            .where(sessions.c.id == session.id)
            .values(
                revoked_at=session.revoked_at,
                revoked_reason=session.revoked_reason.value if session.revoked_reason else None,
                last_used_at=session.last_used_at,
            )
        )

    async def active(self, user_id: str, now: datetime) -> list[Session]:
        query = (
            select(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)
            .order_by(sessions.c.created_at.desc())
        )
        return [_session(row) for row in await self._connection.execute(query)]

    async def revoke_all(
        self, user_id: str, now: datetime, reason: RevocationReason, keep: str | None = None
    ) -> list[str]:
        kept = [sessions.c.id != keep] if keep is not None else []
        result = await self._connection.execute(
            update(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None), *kept)
            .values(revoked_at=now, revoked_reason=reason.value)
            .returning(sessions.c.id)
        )
        return [str(session_id) for session_id in result.scalars()]

    async def revoked_since(self, since: datetime) -> list[tuple[str, datetime]]:
        query = select(sessions.c.id, sessions.c.revoked_at).where(sessions.c.revoked_at >= since)
        return [(str(row.id), row.revoked_at) for row in await self._connection.execute(query)]

    async def add_token(self, token: RefreshToken) -> None:
        await self._connection.execute(
            insert(refresh_tokens).values(
                token_hash=token.token_hash,
                session_id=token.session_id,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
            )
        )

    async def token(self, token_hash: str) -> RefreshToken | None:
        query = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
        row = (await self._connection.execute(query)).first()
        if row is None:
            return None
        return RefreshToken(row.token_hash, row.session_id, row.issued_at, row.expires_at, row.used_at)

    async def use_token(self, token_hash: str, now: datetime) -> bool:
        # The WHERE makes this a compare-and-set: of two concurrent refreshes, one wins.
        result = await self._connection.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        return result.rowcount == 1


class SqlAuthUnitOfWork(SqlUnitOfWork, UnitOfWork):
    """The auth repositories in one SQL transaction."""

    def _attach(self, connection: AsyncConnection) -> None:
        self.users = SqlUserRepository(connection)
        self.sessions = SqlSessionRepository(connection)
