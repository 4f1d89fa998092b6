"""Presence's SQL repositories (membership projection, privacy setting), against SQLite and PostgreSQL,
and the migration's backfill from messaging's members."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.common.clock import ManualClock
from parlour.common.db import alembic_config, create_engine, migrate
from parlour.messaging.infrastructure.tables import chats as messaging_chats
from parlour.messaging.infrastructure.tables import members as messaging_members
from parlour.presence.adapters.sql import SqlContacts, SqlPrivacySettings
from parlour.presence.application.contacts import MembershipView


def _id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


def view(engine: AsyncEngine) -> MembershipView:
    """The projection as the use cases read it (its cache forgets a chat this process changes)."""
    return MembershipView(SqlContacts(engine), ManualClock())


async def test_a_membership_change_replaces_the_members_and_says_who_was_added(engine: AsyncEngine) -> None:
    contacts = view(engine)
    chat, a, b, c = _id(), _id(), _id(), _id()
    assert await contacts.apply(chat, 1, [a, b]) == {a, b}
    assert await contacts.apply(chat, 2, [a, b, c]) == {c}
    assert await contacts.of(a) == {b, c}
    assert await contacts.apply(chat, 3, [a, c]) == set()
    assert await contacts.of(a) == {c}
    assert await contacts.of(b) == set()


async def test_a_change_no_newer_than_the_one_held_changes_nothing(engine: AsyncEngine) -> None:
    contacts = view(engine)
    chat, a, b, c = _id(), _id(), _id(), _id()
    assert await contacts.apply(chat, 5, [a, b]) == {a, b}
    assert await contacts.apply(chat, 4, [a, c]) is None
    assert await contacts.apply(chat, 5, [a, c]) is None
    assert await contacts.of(a) == {b}


async def test_contacts_span_every_chat_once_and_never_the_user(engine: AsyncEngine) -> None:
    contacts = view(engine)
    a, b, c, d = _id(), _id(), _id(), _id()
    await contacts.apply(_id(), 1, [a, b])
    await contacts.apply(_id(), 1, [a, b, c])
    await contacts.apply(_id(), 1, [c, d])
    assert await contacts.of(a) == {b, c}
    assert await contacts.of(c) == {a, b, d}
    assert await contacts.among(a, [b, d, "unknown"]) == {b}
    many = [_id() for _ in range(1200)]
    await contacts.apply(_id(), 1, [a, *many[:600]])
    assert await contacts.among(a, many) == set(many[:600]), "more ids than one IN list takes"


async def test_memberships_give_the_chats_of_each_user_and_the_members_of_each_chat(engine: AsyncEngine) -> None:
    contacts = SqlContacts(engine)
    g, d, a, b, c = _id(), _id(), _id(), _id(), _id()
    await contacts.apply(g, 1, [a, b, c])
    await contacts.apply(d, 1, [a, b])
    assert await contacts.chats_of([a, c, "nobody"]) == {a: {g, d}, c: {g}}
    assert await contacts.members_of([g, d, "no-chat"]) == {g: {a, b, c}, d: {a, b}}
    many = [_id() for _ in range(1200)]
    await contacts.apply(g, 2, many)
    assert await contacts.members_of([g]) == {g: set(many)}, "more rows than one IN list"
    assert await contacts.chats_of(many[:700]) == {user: {g} for user in many[:700]}


async def test_the_privacy_setting_is_stored_and_changed(engine: AsyncEngine) -> None:
    settings = SqlPrivacySettings(engine)
    a, b = _id(), _id()
    assert not await settings.hidden(a)
    await settings.set_hidden(a, True)
    await settings.set_hidden(b, True)
    await settings.set_hidden(b, False)
    assert await settings.hidden(a)
    assert not await settings.hidden(b)
    hiding = await settings.hiding()
    assert a in hiding
    assert b not in hiding


async def test_the_migration_backfills_the_chats_that_exist_at_their_membership_version(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to, "messaging@head")
            now = datetime.now(UTC)
            await connection.execute(
                insert(messaging_chats).values(
                    id="c1", kind="group", title="old", created_at=now, last_activity_at=now, member_version=7
                )
            )
            rows = [{"chat_id": "c1", "user_id": u, "role": "member", "joined_at": now} for u in ("a", "b")]
            await connection.execute(insert(messaging_members), rows)
        await migrate(engine)
        contacts = view(engine)
        assert await contacts.of("a") == {"b"}
        assert await contacts.apply("c1", 7, ["a"]) is None, "older changes still on their way change nothing"
        assert await contacts.apply("c1", 8, ["a", "b", "c"]) == {"c"}
    finally:
        await engine.dispose()


def _upgrade_to(connection: Connection, target: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, target)
