"""Presence's SQL repositories (SQLite and PostgreSQL alike): the membership projection and the setting.

Contacts are read as memberships, never as a pairwise join of every chat's members: the chats of the
users asked about, then those chats' members (which `MembershipView` caches), so a flush of a thousand
changes in a group of a thousand reads two thousand rows, not a million. IN lists go in slices
(`in_slices`, SQLite's variable limit).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parlour.common.db import SqlUnitOfWork, in_slices
from parlour.presence.application.ports import Contacts, PrivacySettings
from parlour.presence.infrastructure.tables import chats, members, settings

_chats_of = select(members.c.user_id, members.c.chat_id).where(members.c.user_id.in_(bindparam("ids", expanding=True)))
_members_of = select(members.c.chat_id, members.c.user_id).where(
    members.c.chat_id.in_(bindparam("ids", expanding=True))
)
_user_chats = select(members.c.chat_id).where(members.c.user_id == bindparam("user_id"))


class _Work(SqlUnitOfWork):
    connection: AsyncConnection

    def _attach(self, connection: AsyncConnection) -> None:
        self.connection = connection


class SqlContacts(Contacts):
    """The membership projection in `presence_members` and `presence_chats`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def apply(self, chat_id: str, version: int, member_ids: Collection[str]) -> set[str] | None:
        wanted = set(member_ids)
        async with _Work(self._engine) as work:
            connection = work.connection
            held = (await connection.execute(select(chats.c.version).where(chats.c.id == chat_id))).scalar()
            if held is not None and held >= version:
                return None
            rows = await connection.execute(select(members.c.user_id).where(members.c.chat_id == chat_id))
            present = set(rows.scalars())
            if held is None:
                await connection.execute(insert(chats).values(id=chat_id, version=version))
            else:
                await connection.execute(update(chats).where(chats.c.id == chat_id).values(version=version))
            if gone := present - wanted:
                await connection.execute(
                    delete(members).where(members.c.chat_id == chat_id, members.c.user_id.in_(sorted(gone)))
                )
            if added := wanted - present:
                await connection.execute(insert(members), [{"chat_id": chat_id, "user_id": u} for u in sorted(added)])
            await work.commit()
        return added

    async def among(self, user_id: str, candidates: Collection[str]) -> set[str]:
        found: set[str] = set()
        query = (
            select(members.c.user_id)
            .where(members.c.chat_id.in_(_user_chats), members.c.user_id.in_(bindparam("ids", expanding=True)))
            .distinct()
        )
        async with self._engine.connect() as connection:
            for part in in_slices(sorted(candidates)):
                found.update((await connection.execute(query, {"user_id": user_id, "ids": list(part)})).scalars())
        return found

    async def chats_of(self, user_ids: Collection[str]) -> dict[str, set[str]]:
        return await self._pairs(_chats_of, user_ids)

    async def members_of(self, chat_ids: Collection[str]) -> dict[str, set[str]]:
        return await self._pairs(_members_of, chat_ids)

    async def _pairs(self, query: Any, keys: Collection[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        async with self._engine.connect() as connection:
            for part in in_slices(sorted(keys)):
                for key, value in await connection.execute(query, {"ids": list(part)}):
                    found.setdefault(key, set()).add(value)
        return found


class SqlPrivacySettings(PrivacySettings):
    """`presence_settings`: one row per user who ever chose."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def hidden(self, user_id: str) -> bool:
        async with self._engine.connect() as connection:
            row = await connection.execute(select(settings.c.hidden).where(settings.c.user_id == user_id))
            return bool(row.scalar())

    async def set_hidden(self, user_id: str, hidden: bool) -> None:
        async with _Work(self._engine) as work:
            dialect_insert: Any = postgresql_insert if work.connection.dialect.name == "postgresql" else sqlite_insert
            statement = dialect_insert(settings).values(user_id=user_id, hidden=hidden)
            statement = statement.on_conflict_do_update(index_elements=["user_id"], set_={"hidden": hidden})
            await work.connection.execute(statement)
            await work.commit()

    async def hiding(self) -> list[str]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(select(settings.c.user_id).where(settings.c.hidden.is_(True)))
            return sorted(rows.scalars())
