"""The decision half's SQL repositories (SQLite and PostgreSQL alike).

Pending states are changed under lock: blank rows are inserted first where there are none (insert or
ignore), then the rows are read `FOR UPDATE` in key order and written back, one transaction, so two
consumers of the same chat queue behind each other instead of losing a message. Each of the three is one
statement whatever the number of rows, and none does per-row work in SQLAlchemy (a busy group's batch
is a thousand rows): on PostgreSQL the rows travel as arrays (`unnest`, one round trip, where an
executemany is one per row), on SQLite as a JSON list joined on the key (`json_each`) or through the
driver's executemany (C, on the loop's thread). The scheduler's claim
reads due rows `FOR UPDATE SKIP LOCKED` (several notifications processes never take the same row);
SQLite has neither, and needs neither: one process, whose writes take turns (parlour/common/db.py).
IN lists go in slices (`in_slices`, SQLite's variable limit).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parlour.common.db import SqlUnitOfWork, in_slices
from parlour.notifications.application.stores import Directory, Key, Memberships, PendingStore, Preferences
from parlour.notifications.domain.model import ChatKind
from parlour.notifications.domain.rule import Pending
from parlour.notifications.infrastructure.tables import chats, mutes, pending, preferences, reads, users

_STATE_COLUMNS = (
    "first_seq",
    "last_seq",
    "count",
    "sender_ids",
    "chat_kind",
    "chat_title",
    "preview",
    "mentioned",
    "due_at",
    "last_sent_at",
)

# The batch's keys as a table, joined on the primary key.
_KEYS_SQLITE = "json_each(:keys) AS k"
_KEYS_POSTGRES = "unnest(CAST(:chats AS text[]), CAST(:users AS text[])) AS k(chat_id, user_id)"
_ADD_BLANK_SQLITE = "INSERT INTO notifications_pending (chat_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
_ADD_BLANK_POSTGRES = text(
    "INSERT INTO notifications_pending (chat_id, user_id) SELECT k.chat_id, k.user_id "
    "FROM unnest(CAST(:chats AS text[]), CAST(:users AS text[])) AS k(chat_id, user_id) "
    "ORDER BY k.chat_id, k.user_id ON CONFLICT DO NOTHING"
)
_READ_LOCKED_SQLITE = (
    select(pending)
    .select_from(text(_KEYS_SQLITE))
    .where(
        pending.c.chat_id == literal_column("json_extract(k.value, '$[0]')"),
        pending.c.user_id == literal_column("json_extract(k.value, '$[1]')"),
    )
    .order_by(pending.c.chat_id, pending.c.user_id)
)
_READ_LOCKED_POSTGRES = (
    select(pending)
    .select_from(text(_KEYS_POSTGRES))
    .where(pending.c.chat_id == literal_column("k.chat_id"), pending.c.user_id == literal_column("k.user_id"))
    .order_by(pending.c.chat_id, pending.c.user_id)
    .with_for_update(of=pending)
)
# The columns in `_STATE_COLUMNS` order, then the key (`_values`).
_WRITE_SQLITE = (
    'UPDATE notifications_pending SET first_seq = ?, last_seq = ?, "count" = ?, sender_ids = ?, chat_kind = ?, '
    "chat_title = ?, preview = ?, mentioned = ?, due_at = ?, last_sent_at = ? WHERE chat_id = ? AND user_id = ?"
)
_WRITE_POSTGRES = text(
    'UPDATE notifications_pending AS p SET first_seq = v.first_seq, last_seq = v.last_seq, "count" = v.n, '
    "sender_ids = v.sender_ids, chat_kind = v.chat_kind, chat_title = v.chat_title, preview = v.preview, "
    "mentioned = v.mentioned, due_at = v.due_at, last_sent_at = v.last_sent_at "
    "FROM unnest(CAST(:first_seq AS bigint[]), CAST(:last_seq AS bigint[]), CAST(:count AS integer[]), "
    "CAST(:sender_ids AS text[]), CAST(:chat_kind AS text[]), CAST(:chat_title AS text[]), "
    "CAST(:preview AS text[]), CAST(:mentioned AS boolean[]), CAST(:due_at AS double precision[]), "
    "CAST(:last_sent_at AS double precision[]), CAST(:k_chat AS text[]), CAST(:k_user AS text[])) "
    "AS v(first_seq, last_seq, n, sender_ids, chat_kind, chat_title, preview, mentioned, due_at, last_sent_at, "
    "chat_id, user_id) WHERE p.chat_id = v.chat_id AND p.user_id = v.user_id"
)


class _Work(SqlUnitOfWork):
    connection: AsyncConnection

    def _attach(self, connection: AsyncConnection) -> None:
        self.connection = connection


def _insert_ignoring(connection: AsyncConnection, table: Any, keys: Sequence[str]) -> Any:
    dialect_insert: Any = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=list(keys))


def _by_chat(keys: Collection[Key]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for chat_id, user_id in sorted(keys):
        grouped.setdefault(chat_id, []).append(user_id)
    return grouped


def _state(row: Sequence[Any]) -> Pending:
    """A `notifications_pending` row (all its columns, in the table's order) as a state."""
    chat_id, user_id, first_seq, last_seq, count, senders, kind, title, preview, mentioned, due_at, sent_at = row
    chat_kind: ChatKind = "direct" if kind == "direct" else "group"
    return Pending(
        chat_id,
        user_id,
        first_seq,
        last_seq,
        count,
        tuple(senders.split()),
        chat_kind,
        title,
        preview,
        bool(mentioned),
        due_at,
        sent_at,
    )


def _values(state: Pending) -> tuple[Any, ...]:
    """A state's columns in `_STATE_COLUMNS` order, then its key."""
    return (
        state.first_seq,
        state.last_seq,
        state.count,
        " ".join(state.sender_ids),
        state.chat_kind,
        state.chat_title,
        state.preview,
        state.mentioned,
        state.due_at,
        state.last_sent_at,
        state.chat_id,
        state.user_id,
    )


class SqlPendingStore(PendingStore):
    """`notifications_pending`: one row per (chat, member) ever concerned."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def change(self, keys: Collection[Key], change: Callable[[dict[Key, Pending]], Sequence[Pending]]) -> None:
        if not keys:
            return
        ordered = sorted(keys)
        async with _Work(self._engine) as work:
            connection = work.connection
            postgres = connection.dialect.name == "postgresql"
            if postgres:
                by_key = {"chats": [c for c, _ in ordered], "users": [u for _, u in ordered]}
                await connection.execute(_ADD_BLANK_POSTGRES, by_key)
                rows = await connection.execute(_READ_LOCKED_POSTGRES, by_key)
            else:
                await connection.exec_driver_sql(_ADD_BLANK_SQLITE, ordered)
                rows = await connection.execute(_READ_LOCKED_SQLITE, {"keys": json.dumps(ordered)})
            current = {(row.chat_id, row.user_id): _state(row) for row in rows}
            changed = [_values(state) for state in change(current)]
            if changed and postgres:
                columns = list(zip(*changed, strict=True))
                names = [*_STATE_COLUMNS, "k_chat", "k_user"]
                await connection.execute(
                    _WRITE_POSTGRES, {name: list(column) for name, column in zip(names, columns, strict=True)}
                )
            elif changed:
                await connection.exec_driver_sql(_WRITE_SQLITE, changed)
            await work.commit()

    async def claim_due(self, now: float, limit: int, until: float) -> list[Pending]:
        async with _Work(self._engine) as work:
            connection = work.connection
            query = (
                select(pending)
                .where(pending.c.due_at.is_not(None), pending.c.due_at <= now)
                .order_by(pending.c.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            claimed = [_state(row) for row in await connection.execute(query)]
            if claimed:
                await connection.execute(
                    update(pending)
                    .where(pending.c.chat_id == bindparam("k_chat"), pending.c.user_id == bindparam("k_user"))
                    .values(due_at=until),
                    [{"k_chat": p.chat_id, "k_user": p.user_id} for p in claimed],
                )
            await work.commit()
        return claimed

    async def next_due(self) -> float | None:
        async with self._engine.connect() as connection:
            due = await connection.execute(select(func.min(pending.c.due_at)))
            value = due.scalar()
            return None if value is None else float(value)


class SqlMemberships(Memberships):
    """`notifications_reads` (a row per membership, with its cursor) and `notifications_chats`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def apply(self, chat_id: str, version: int, member_ids: Collection[str]) -> None:
        wanted = set(member_ids)
        async with _Work(self._engine) as work:
            connection = work.connection
            held = (await connection.execute(select(chats.c.version).where(chats.c.id == chat_id))).scalar()
            if held is not None and held >= version:
                return
            rows = await connection.execute(select(reads.c.user_id).where(reads.c.chat_id == chat_id))
            present = set(rows.scalars())
            if held is None:
                await connection.execute(insert(chats).values(id=chat_id, version=version))
            else:
                await connection.execute(update(chats).where(chats.c.id == chat_id).values(version=version))
            if gone := sorted(present - wanted):
                await connection.execute(delete(reads).where(reads.c.chat_id == chat_id, reads.c.user_id.in_(gone)))
            if added := sorted(wanted - present):
                await connection.execute(insert(reads), [{"chat_id": chat_id, "user_id": u, "seq": 0} for u in added])
            await work.commit()

    async def advance(self, moves: Sequence[tuple[str, str, int]]) -> None:
        furthest: dict[Key, int] = {}
        for chat_id, user_id, seq in moves:
            furthest[(chat_id, user_id)] = max(seq, furthest.get((chat_id, user_id), 0))
        if not furthest:
            return
        statement = (
            update(reads)
            .where(
                reads.c.chat_id == bindparam("k_chat"),
                reads.c.user_id == bindparam("k_user"),
                reads.c.seq < bindparam("k_seq"),
            )
            .values(seq=bindparam("k_seq"))
        )
        async with _Work(self._engine) as work:
            params = [{"k_chat": c, "k_user": u, "k_seq": s} for (c, u), s in sorted(furthest.items())]
            await work.connection.execute(statement, params)
            await work.commit()

    async def read_seqs(self, keys: Collection[Key]) -> dict[Key, int]:
        found: dict[Key, int] = {}
        async with self._engine.connect() as connection:
            for chat_id, user_ids in _by_chat(keys).items():
                for part in in_slices(user_ids):
                    query = select(reads.c.user_id, reads.c.seq).where(
                        reads.c.chat_id == chat_id, reads.c.user_id.in_(list(part))
                    )
                    for user_id, seq in await connection.execute(query):
                        found[(chat_id, user_id)] = seq
        return found


class SqlPreferences(Preferences):
    """`notifications_preferences` and `notifications_mutes`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def previews(self, user_ids: Collection[str]) -> dict[str, bool]:
        found = dict.fromkeys(user_ids, True)
        async with self._engine.connect() as connection:
            for part in in_slices(sorted(user_ids)):
                query = select(preferences.c.user_id, preferences.c.preview).where(
                    preferences.c.user_id.in_(list(part))
                )
                for user_id, preview in await connection.execute(query):
                    found[user_id] = bool(preview)
        return found

    async def set_preview(self, user_id: str, preview: bool) -> None:
        async with _Work(self._engine) as work:
            dialect_insert: Any = postgresql_insert if work.connection.dialect.name == "postgresql" else sqlite_insert
            statement = dialect_insert(preferences).values(user_id=user_id, preview=preview)
            statement = statement.on_conflict_do_update(index_elements=["user_id"], set_={"preview": preview})
            await work.connection.execute(statement)
            await work.commit()

    async def muted(self, keys: Collection[Key]) -> set[Key]:
        found: set[Key] = set()
        async with self._engine.connect() as connection:
            for chat_id, user_ids in _by_chat(keys).items():
                for part in in_slices(user_ids):
                    query = select(mutes.c.user_id).where(mutes.c.chat_id == chat_id, mutes.c.user_id.in_(list(part)))
                    found.update((chat_id, user_id) for user_id in (await connection.execute(query)).scalars())
        return found

    async def mutes(self, user_id: str) -> list[str]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(mutes.c.chat_id).where(mutes.c.user_id == user_id).order_by(mutes.c.chat_id)
            )
            return list(rows.scalars())

    async def mute(self, user_id: str, chat_id: str) -> None:
        async with _Work(self._engine) as work:
            statement = _insert_ignoring(work.connection, mutes, ["user_id", "chat_id"])
            await work.connection.execute(statement, [{"user_id": user_id, "chat_id": chat_id}])
            await work.commit()

    async def unmute(self, user_id: str, chat_id: str) -> None:
        async with _Work(self._engine) as work:
            await work.connection.execute(delete(mutes).where(mutes.c.user_id == user_id, mutes.c.chat_id == chat_id))
            await work.commit()


class SqlDirectory(Directory):
    """`notifications_users`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, names: Mapping[str, str]) -> None:
        if not names:
            return
        async with _Work(self._engine) as work:
            connection = work.connection
            dialect_insert: Any = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
            statement = dialect_insert(users)
            statement = statement.on_conflict_do_update(
                index_elements=["id"], set_={"display_name": statement.excluded.display_name}
            )
            await connection.execute(statement, [{"id": u, "display_name": n} for u, n in sorted(names.items())])
            await work.commit()

    async def names(self, user_ids: Collection[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        async with self._engine.connect() as connection:
            for part in in_slices(sorted(user_ids)):
                query = select(users.c.id, users.c.display_name).where(users.c.id.in_(list(part)))
                found.update({user_id: name for user_id, name in await connection.execute(query)})
        return found
