"""SQL repositories of the messaging service, on SQLAlchemy Core (SQLite and PostgreSQL alike).

Sequence numbers: `take_seqs` reads the counters of a batch's chats and moves them, in the transaction
that inserts the messages, under row locks (PostgreSQL, `FOR UPDATE`) or the database write lock (SQLite,
`BEGIN IMMEDIATE`), which serialise every writer of a chat, whichever worker it runs on. A seq is taken
and used, or rolled back with the message: never a gap, never a duplicate.

Hot statements are built once at import and take their values as parameters (expanding IN lists,
executemany), so a batch costs no SQL compilation whatever its size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, literal_column, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parlour.common.db import SqlUnitOfWork
from parlour.messaging.application.ports import (
    ChatCursor,
    ChatRepository,
    ChatSummary,
    ConcurrentWrite,
    MemberRepository,
    MessageRepository,
    OutboxEntry,
    OutboxRepository,
    ProjectedUser,
    ReadMove,
    UnitOfWork,
    UnitOfWorkFactory,
    UserRepository,
)
from parlour.messaging.domain.model import REACTIONS, Chat, ChatKind, Member, Message, Reaction, Role
from parlour.messaging.infrastructure.tables import chats, members, messages, outbox, reactions, users


def _chat(row: Any) -> Chat:
    return Chat(
        row.id,
        ChatKind(row.kind),
        row.title,
        row.created_at,
        row.last_activity_at,
        row.last_seq,
        row.member_version,
        row.direct_key,
    )


def _member(row: Any) -> Member:
    return Member(row.chat_id, row.user_id, Role(row.role), row.joined_at, row.read_seq)


def _message(row: Any, prefix: str = "") -> Message:
    def field(name: str) -> Any:
        return getattr(row, prefix + name)

    return Message(
        field("id"),
        field("chat_id"),
        field("seq"),
        field("sender_id"),
        field("client_id"),
        field("body"),
        field("created_at"),
        field("edited_at"),
        field("deleted_at"),
        field("deleted_by"),
    )


class SqlChatRepository(ChatRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, chat: Chat) -> bool:
        statement = insert(chats).values(
            id=chat.id,
            kind=chat.kind.value,
            title=chat.title,
            direct_key=chat.direct_key,
            created_at=chat.created_at,
            last_activity_at=chat.last_activity_at,
            last_seq=chat.last_seq,
            member_version=chat.member_version,
        )
        try:
            # A savepoint, so that losing the race for a direct pair leaves the transaction usable.
            async with self._connection.begin_nested():
                await self._connection.execute(statement)
        except IntegrityError:
            if chat.direct_key is None:
                raise
            return False
        return True

    async def get(self, chat_id: str) -> Chat | None:
        row = (await self._connection.execute(select(chats).where(chats.c.id == chat_id))).first()
        return _chat(row) if row else None

    async def by_direct_key(self, key: str) -> Chat | None:
        row = (await self._connection.execute(select(chats).where(chats.c.direct_key == key))).first()
        return _chat(row) if row else None

    async def member_version(self, chat_id: str, *, lock: bool = False) -> tuple[ChatKind, int, str | None] | None:
        query = select(chats.c.kind, chats.c.member_version, chats.c.title).where(chats.c.id == chat_id)
        if lock:
            query = query.with_for_update()  # SQLite has no FOR UPDATE: its BEGIN IMMEDIATE locked already
        row = (await self._connection.execute(query)).first()
        return (ChatKind(row.kind), row.member_version, row.title) if row else None

    async def member_versions(
        self, chat_ids: Sequence[str], *, lock: bool = False
    ) -> dict[str, tuple[ChatKind, int, str | None]]:
        if not chat_ids:
            return {}
        query = (
            select(chats.c.id, chats.c.kind, chats.c.member_version, chats.c.title)
            .where(chats.c.id.in_(sorted(chat_ids)))
            .order_by(chats.c.id)
        )
        if lock:
            query = query.with_for_update()  # in id order: overlapping writers queue instead of deadlocking
        rows = await self._connection.execute(query)
        return {row.id: (ChatKind(row.kind), row.member_version, row.title) for row in rows}

    async def take_seqs(self, counts: Mapping[str, int], at: datetime) -> dict[str, int]:
        if not counts:
            return {}
        # Read the counters under the row locks (PostgreSQL; SQLite's write lock is held since BEGIN), then
        # move every one in one executemany: two statements compiled once, whatever the batch.
        found = await self._connection.execute(_LAST_SEQS.with_for_update(), {"ids": sorted(counts)})
        last = {row.id: row.last_seq + counts[row.id] for row in found}
        if not last:
            return last
        if _postgres(self._connection):
            moved = {"c_id": list(last), "c_last": list(last.values()), "c_at": at}
            await self._connection.execute(_MOVE_SEQS_POSTGRES, moved)
        else:
            await self._connection.execute(_MOVE_SEQ, [{"c_id": c, "c_last": s, "c_at": at} for c, s in last.items()])
        return last

    async def bump_member_version(self, chat_id: str) -> int:
        statement = (
            update(chats)
            .where(chats.c.id == chat_id)
            .values(member_version=chats.c.member_version + 1)
            .returning(chats.c.member_version)
        )
        version: int = (await self._connection.execute(statement)).scalar_one()
        return version

    async def rename(self, chat_id: str, title: str) -> None:
        await self._connection.execute(update(chats).where(chats.c.id == chat_id).values(title=title))

    async def summaries(self, user_id: str, limit: int, after: ChatCursor | None) -> list[ChatSummary]:
        last = messages.alias("last_message")
        query = (
            select(chats, members.c.role, members.c.read_seq, *(column.label(f"m_{column.name}") for column in last.c))
            .select_from(
                members.join(chats, chats.c.id == members.c.chat_id).outerjoin(
                    last, and_(last.c.chat_id == chats.c.id, last.c.seq == chats.c.last_seq)
                )
            )
            .where(members.c.user_id == user_id)
            .order_by(chats.c.last_activity_at.desc(), chats.c.id.desc())
            .limit(limit)
        )
        if after is not None:
            at = after.last_activity_at
            query = query.where(
                or_(chats.c.last_activity_at < at, and_(chats.c.last_activity_at == at, chats.c.id < after.chat_id))
            )
        return [_summary(row) for row in await self._connection.execute(query)]


_LAST_SEQS = select(chats.c.id, chats.c.last_seq).where(chats.c.id.in_(bindparam("ids", expanding=True)))
_MOVE_SEQ = (
    update(chats)
    .where(chats.c.id == bindparam("c_id"))
    .values(last_seq=bindparam("c_last"), last_activity_at=bindparam("c_at"))
)


def _summary(row: Any) -> ChatSummary:
    last = _message(row, "m_") if row.m_id is not None else None
    return ChatSummary(_chat(row), Role(row.role), row.read_seq, last)


class SqlMemberRepository(MemberRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, member: Member) -> None:
        await self._connection.execute(
            insert(members).values(
                chat_id=member.chat_id,
                user_id=member.user_id,
                role=member.role.value,
                read_seq=member.read_seq,
                joined_at=member.joined_at,
            )
        )

    async def of_chat(self, chat_id: str) -> list[Member]:
        query = select(members).where(members.c.chat_id == chat_id).order_by(members.c.joined_at, members.c.user_id)
        return [_member(row) for row in await self._connection.execute(query)]

    async def of_chats(self, chat_ids: Sequence[str]) -> dict[str, list[Member]]:
        if not chat_ids:
            return {}
        query = (
            select(members)
            .where(members.c.chat_id.in_(sorted(chat_ids)))
            .order_by(members.c.chat_id, members.c.joined_at, members.c.user_id)
        )
        found: dict[str, list[Member]] = {}
        for row in await self._connection.execute(query):
            found.setdefault(row.chat_id, []).append(_member(row))
        return found

    async def remove(self, chat_id: str, user_id: str) -> None:
        await self._connection.execute(
            members.delete().where(members.c.chat_id == chat_id, members.c.user_id == user_id)
        )

    async def set_role(self, chat_id: str, user_id: str, role: Role) -> None:
        await self._connection.execute(
            update(members).where(members.c.chat_id == chat_id, members.c.user_id == user_id).values(role=role.value)
        )

    async def advance_reads(self, moves: Sequence[ReadMove]) -> None:
        if not moves:
            return
        # One statement for every move; the WHERE keeps each cursor monotonic, even between concurrent
        # transactions.
        furthest: dict[tuple[str, str], int] = {}
        for move in moves:
            key = (move.chat_id, move.user_id)
            furthest[key] = max(move.seq, furthest.get(key, move.seq))
        rows = [{"m_chat": chat, "m_user": user, "m_seq": seq} for (chat, user), seq in furthest.items()]
        if _postgres(self._connection):
            await self._connection.execute(_ADVANCE_READS_POSTGRES, _columns(rows, ("m_chat", "m_user", "m_seq")))
        else:
            await self._connection.execute(_ADVANCE_READ, rows)


_ADVANCE_READ = (
    update(members)
    .where(
        members.c.chat_id == bindparam("m_chat"),
        members.c.user_id == bindparam("m_user"),
        members.c.read_seq < bindparam("m_seq"),
    )
    .values(read_seq=bindparam("m_seq"))
)


class SqlMessageRepository(MessageRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add_many(self, new: Sequence[Message]) -> None:
        rows = [
            {
                "id": message.id,
                "chat_id": message.chat_id,
                "seq": message.seq,
                "sender_id": message.sender_id,
                "client_id": message.client_id,
                "body": message.body,
                "created_at": message.created_at,
                "reply_to": message.reply_to.message_id if message.reply_to is not None else None,
            }
            for message in new
        ]
        try:
            if _postgres(self._connection):  # arrays, unnested server-side: one round trip, no per-row work
                await self._connection.execute(_INSERT_MESSAGES_POSTGRES, _columns(rows, _MESSAGE_COLUMNS))
            else:  # SQLite's executemany runs in the driver's thread, in C
                await self._connection.execute(insert(messages), rows)
        except IntegrityError as error:
            raise ConcurrentWrite() from error

    async def by_client_ids(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Message]:
        if not keys:
            return {}
        # The pairs as a table joined on the unique index: one index search per pair, and one statement
        # text whatever the batch size (a VALUES list would be compiled anew for every batch; two IN lists,
        # one per column, would probe every sender with every client id).
        pairs = sorted(set(keys))
        if _postgres(self._connection):
            params = {"senders": [s for s, _ in pairs], "clients": [c for _, c in pairs]}
            rows = await self._connection.execute(_BY_CLIENT_IDS_POSTGRES, params)
        else:
            rows = await self._connection.execute(_BY_CLIENT_IDS_SQLITE, {"pairs": json.dumps(pairs)})
        found = (_message(row) for row in rows)
        return {(m.sender_id, m.client_id): m for m in found}

    async def get(self, chat_id: str, message_id: str) -> Message | None:
        query = select(messages).where(messages.c.id == message_id, messages.c.chat_id == chat_id)
        row = (await self._connection.execute(query)).first()
        if row is None:
            return None
        (message,) = await self._completed([row])
        return message

    async def by_ids(self, message_ids: Sequence[str]) -> dict[str, Message]:
        if not message_ids:
            return {}
        rows = await self._connection.execute(_BY_IDS, {"ids": list(message_ids)})
        return {row.id: _message(row) for row in rows}

    async def _completed(self, rows: Sequence[Any]) -> list[Message]:
        """The messages of `rows` with what each replies to (as it is now) and their reactions: one more
        statement for each, and none when no message needs it."""
        found = [_message(row) for row in rows]
        replied = await self.by_ids(sorted({row.reply_to for row in rows if row.reply_to is not None}))
        if replied:
            found = [
                replace(message, reply_to=replied[row.reply_to].quote()) if row.reply_to in replied else message
                for message, row in zip(found, rows, strict=True)
            ]
        return await self._with_reactions(found)

    async def _with_reactions(self, found: list[Message]) -> list[Message]:
        """`found` with their reactions, read in one statement (most messages have none)."""
        if not found:
            return found
        rows = await self._connection.execute(_REACTIONS_OF, {"ids": [message.id for message in found]})
        by_message: dict[str, dict[str, list[str]]] = {}
        for row in rows:
            by_message.setdefault(row.message_id, {}).setdefault(row.emoji, []).append(row.user_id)
        if not by_message:
            return found
        return [_reacted(message, by_message[message.id]) if message.id in by_message else message for message in found]

    async def set_reaction(self, message_id: str, user_id: str, emoji: str, *, add: bool, at: datetime) -> None:
        if not add:
            await self._connection.execute(
                reactions.delete().where(
                    reactions.c.message_id == message_id, reactions.c.user_id == user_id, reactions.c.emoji == emoji
                )
            )
            return
        insert_reaction = postgresql_insert if _postgres(self._connection) else sqlite_insert
        row = {"message_id": message_id, "user_id": user_id, "emoji": emoji, "created_at": at}
        await self._connection.execute(insert_reaction(reactions).on_conflict_do_nothing(), row)

    async def save(self, message: Message) -> None:
        if message.deleted:  # a tombstone keeps no reactions
            await self._connection.execute(reactions.delete().where(reactions.c.message_id == message.id))
        await self._connection.execute(
            update(messages)
            .where(messages.c.id == message.id)
            .values(
                body=message.body,
                edited_at=message.edited_at,
                deleted_at=message.deleted_at,
                deleted_by=message.deleted_by,
            )
        )

    async def page(self, chat_id: str, *, after: int | None, before: int | None, limit: int) -> list[Message]:
        query = select(messages).where(messages.c.chat_id == chat_id).limit(limit)
        if after is not None:
            query = query.where(messages.c.seq > after)
        if before is not None:
            query = query.where(messages.c.seq < before)
        if after is not None:
            return await self._completed((await self._connection.execute(query.order_by(messages.c.seq))).all())
        rows = await self._connection.execute(query.order_by(messages.c.seq.desc()))
        return await self._completed(list(reversed(rows.all())))


_BY_IDS = select(messages).where(messages.c.id.in_(bindparam("ids", expanding=True)))


# In the order they were put on, so every reader lists a reaction's users alike.
_REACTIONS_OF = (
    select(reactions.c.message_id, reactions.c.emoji, reactions.c.user_id)
    .where(reactions.c.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(reactions.c.message_id, reactions.c.created_at, reactions.c.user_id)
)


def _reacted(message: Message, by_emoji: Mapping[str, list[str]]) -> Message:
    found = tuple(Reaction(emoji, tuple(by_emoji[emoji])) for emoji in REACTIONS if emoji in by_emoji)
    return replace(message, reactions=found)


_BY_CLIENT_IDS_SQLITE = (
    select(messages)
    .select_from(text("json_each(:pairs) AS wanted"))
    .where(
        messages.c.sender_id == literal_column("json_extract(wanted.value, '$[0]')"),
        messages.c.client_id == literal_column("json_extract(wanted.value, '$[1]')"),
    )
)
_BY_CLIENT_IDS_POSTGRES = (
    select(messages)
    .select_from(text("unnest(CAST(:senders AS text[]), CAST(:clients AS text[])) AS wanted(sender, client)"))
    .where(
        messages.c.sender_id == literal_column("wanted.sender"),
        messages.c.client_id == literal_column("wanted.client"),
    )
)


# PostgreSQL takes a batch as arrays and unnests them: one statement and one round trip, where an
# executemany is a round trip per row (measured on this machine: unnest 188k rows/s, single-row INSERTs 5.6k).
_MESSAGE_COLUMNS = ("id", "chat_id", "seq", "sender_id", "client_id", "body", "created_at", "reply_to")
_INSERT_MESSAGES_POSTGRES = text(
    "INSERT INTO messaging_messages (id, chat_id, seq, sender_id, client_id, body, created_at, reply_to) "
    "SELECT * FROM unnest(CAST(:id AS text[]), CAST(:chat_id AS text[]), CAST(:seq AS bigint[]), "
    "CAST(:sender_id AS text[]), CAST(:client_id AS text[]), CAST(:body AS text[]), "
    "CAST(:created_at AS timestamptz[]), CAST(:reply_to AS text[]))"
)
_MOVE_SEQS_POSTGRES = text(
    "UPDATE messaging_chats AS c SET last_seq = v.last_seq, last_activity_at = :c_at "
    "FROM unnest(CAST(:c_id AS text[]), CAST(:c_last AS bigint[])) AS v(id, last_seq) WHERE c.id = v.id"
)
_ADVANCE_READS_POSTGRES = text(
    "UPDATE messaging_members AS m SET read_seq = v.seq "
    "FROM unnest(CAST(:m_chat AS text[]), CAST(:m_user AS text[]), CAST(:m_seq AS bigint[])) "
    "AS v(chat_id, user_id, seq) WHERE m.chat_id = v.chat_id AND m.user_id = v.user_id AND m.read_seq < v.seq"
)


def _postgres(connection: AsyncConnection) -> bool:
    return connection.dialect.name == "postgresql"


def _columns(rows: list[dict[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Rows as one list per column, for the array parameters of an unnest."""
    return {name: [row[name] for row in rows] for name in names}


class SqlUserRepository(UserRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add_many(self, new: Sequence[ProjectedUser]) -> None:
        rows = list(
            {
                user.id: {"id": user.id, "username": user.username, "display_name": user.display_name} for user in new
            }.values()
        )
        if not rows:
            return
        # A redelivered event, or the HTTP fallback first: an id already there is left as it is.
        insert_users = postgresql_insert if _postgres(self._connection) else sqlite_insert
        await self._connection.execute(insert_users(users).on_conflict_do_nothing(index_elements=["id"]), rows)

    async def remove_many(self, user_ids: Sequence[str]) -> None:
        if user_ids:
            await self._connection.execute(users.delete().where(users.c.id.in_(list(user_ids))))

    async def known(self, user_ids: Sequence[str]) -> set[str]:
        if not user_ids:
            return set()
        query = select(users.c.id).where(users.c.id.in_(list(user_ids)))
        return set((await self._connection.execute(query)).scalars())

    async def ids_by_username(self, usernames: Sequence[str]) -> dict[str, str]:
        if not usernames:
            return {}
        query = select(users.c.id, users.c.username).where(users.c.username.in_(list(usernames)))
        return {row.username: row.id for row in await self._connection.execute(query)}


class SqlOutboxRepository(OutboxRepository):
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, writer: str, payload: bytes) -> int:
        statement = insert(outbox).values(writer=writer, payload=payload).returning(outbox.c.id)
        entry_id: int = (await self._connection.execute(statement)).scalar_one()
        return entry_id

    async def remove(self, entry_ids: Sequence[int]) -> None:
        if entry_ids:
            await self._connection.execute(outbox.delete().where(outbox.c.id.in_(list(entry_ids))))

    async def orphans(self, live_writers: Sequence[str], limit: int) -> list[OutboxEntry]:
        query = select(outbox.c.id, outbox.c.payload).order_by(outbox.c.id).limit(limit)
        if live_writers:
            query = query.where(outbox.c.writer.not_in(list(live_writers)))
        # Other relays skip what this one holds (SQLite has no row locks: its one writer is alone anyway).
        query = query.with_for_update(skip_locked=True)
        return [OutboxEntry(row.id, row.payload) for row in await self._connection.execute(query)]

    async def of_writer(self, writer: str, limit: int) -> list[OutboxEntry]:
        query = (
            select(outbox.c.id, outbox.c.payload).where(outbox.c.writer == writer).order_by(outbox.c.id).limit(limit)
        )
        return [OutboxEntry(row.id, row.payload) for row in await self._connection.execute(query)]


class SqlMessagingUnitOfWork(SqlUnitOfWork, UnitOfWork):
    """The messaging repositories in one SQL transaction."""

    def _attach(self, connection: AsyncConnection) -> None:
        self.chats = SqlChatRepository(connection)
        self.members = SqlMemberRepository(connection)
        self.messages = SqlMessageRepository(connection)
        self.users = SqlUserRepository(connection)
        self.outbox = SqlOutboxRepository(connection)


class SqlUnitOfWorkFactory(UnitOfWorkFactory):
    """Units of work on one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __call__(self, *, write: bool = True) -> UnitOfWork:
        return SqlMessagingUnitOfWork(self._engine, write=write)
