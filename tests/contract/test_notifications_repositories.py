"""The decision half's SQL repositories against SQLite and PostgreSQL, and the migration's backfill from
messaging's tables (docs/subsystems/notifications.md, "State")."""

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

from parlour.common.db import alembic_config, create_engine, migrate
from parlour.messaging.infrastructure.tables import chats as messaging_chats
from parlour.messaging.infrastructure.tables import members as messaging_members
from parlour.messaging.infrastructure.tables import users as messaging_users
from parlour.notifications.adapters.sql import SqlDirectory, SqlMemberships, SqlPendingStore, SqlPreferences
from parlour.notifications.domain.rule import Pending


def _id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


async def test_cursors_only_move_forward_and_only_for_members(engine: AsyncEngine) -> None:
    memberships = SqlMemberships(engine)
    chat, a, b = _id(), _id(), _id()
    await memberships.apply(chat, 1, [a, b])
    await memberships.advance([(chat, a, 5), (chat, a, 3), (chat, "stranger", 9)])
    await memberships.advance([(chat, a, 4)])
    assert await memberships.read_seqs([(chat, a), (chat, b), (chat, "stranger")]) == {(chat, a): 5, (chat, b): 0}
    await memberships.apply(chat, 2, [b])
    assert await memberships.read_seqs([(chat, a), (chat, b)]) == {(chat, b): 0}, "a left: no membership"
    await memberships.apply(chat, 1, [a, b])
    assert (chat, a) not in await memberships.read_seqs([(chat, a)]), "an older version changes nothing"


async def test_states_of_more_members_than_one_in_list_round_trip_and_only_due_ones_are_claimed(
    engine: AsyncEngine,
) -> None:
    store = SqlPendingStore(engine)
    chat = _id()
    users = [_id() for _ in range(700)]
    keys = {(chat, user) for user in users}

    def first(current: dict[tuple[str, str], Pending]) -> list[Pending]:
        assert set(current) == keys
        assert all(state == Pending(*key) for key, state in current.items()), "blank where there was none"
        return [
            Pending(chat, user, 1, 1, 1, ("s1", "s2"), "direct", None, "hi", True, 10.0 if i < 3 else 99.0)
            for i, user in enumerate(users)
        ]

    await store.change(keys, first)
    seen: dict[tuple[str, str], Pending] = {}

    def look(current: dict[tuple[str, str], Pending]) -> list[Pending]:
        seen.update(current)
        return []

    await store.change(keys, look)
    assert seen[(chat, users[0])] == Pending(chat, users[0], 1, 1, 1, ("s1", "s2"), "direct", None, "hi", True, 10.0)
    claimed = [p for p in await store.claim_due(50.0, 1000, 80.0) if p.chat_id == chat]
    assert sorted(p.user_id for p in claimed) == sorted(users[:3])
    assert [p for p in await store.claim_due(50.0, 1000, 80.0) if p.chat_id == chat] == [], "claimed: skipped"
    reclaimed = [p for p in await store.claim_due(85.0, 1000, 120.0) if p.chat_id == chat]
    assert sorted(p.user_id for p in reclaimed) == sorted(users[:3]), "a lapsed claim is taken again"


async def test_preferences_and_names_are_stored_and_changed(engine: AsyncEngine) -> None:
    preferences, directory = SqlPreferences(engine), SqlDirectory(engine)
    a, b, chat = _id(), _id(), _id()
    await preferences.set_preview(a, False)
    await preferences.set_preview(a, False)
    assert await preferences.previews([a, b]) == {a: False, b: True}
    await preferences.mute(a, chat)
    await preferences.mute(a, chat)
    assert await preferences.muted([(chat, a), (chat, b)]) == {(chat, a)}
    await preferences.unmute(a, chat)
    await preferences.unmute(a, chat)
    assert await preferences.mutes(a) == []
    await directory.record({a: "Ada"})
    await directory.record({a: "Ada L.", b: "Bob"})
    assert await directory.names([a, b, "nobody"]) == {a: "Ada L.", b: "Bob"}


async def test_the_migration_backfills_members_cursors_versions_and_names(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to, "messaging@head")
            now = datetime.now(UTC)
            chat = {"id": "c1", "kind": "group", "title": "T", "created_at": now, "last_activity_at": now}
            await connection.execute(insert(messaging_chats).values(**chat, member_version=7))
            rows = [
                {"chat_id": "c1", "user_id": u, "role": "member", "joined_at": now, "read_seq": s}
                for u, s in (("a", 4), ("b", 0))
            ]
            await connection.execute(insert(messaging_members), rows)
            await connection.execute(insert(messaging_users).values(id="a", username="ada", display_name="Ada"))
        await migrate(engine)
        memberships = SqlMemberships(engine)
        assert await memberships.read_seqs([("c1", "a"), ("c1", "b")]) == {("c1", "a"): 4, ("c1", "b"): 0}
        await memberships.apply("c1", 7, ["a"])
        assert ("c1", "b") in await memberships.read_seqs([("c1", "b")]), "changes still on their way: ignored"
        assert await SqlDirectory(engine).names(["a"]) == {"a": "Ada"}
    finally:
        await engine.dispose()


def _upgrade_to(connection: Connection, target: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, target)
