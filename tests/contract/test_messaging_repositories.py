"""The messaging repositories' contract, run against SQLite and PostgreSQL alike (one fixture)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from parlour.common.db import create_engine, migrate
from parlour.messaging.adapters.sql import SqlUnitOfWorkFactory
from parlour.messaging.application.ports import (
    ChatCursor,
    ConcurrentWrite,
    ProjectedUser,
    ReadMove,
    UnitOfWorkFactory,
)
from parlour.messaging.domain.model import REACTIONS, Chat, ChatKind, Member, Message, Reaction, Role
from tests.databases import BACKENDS
from tests.unit.messaging.fakes import MemoryStore

NOW = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["memory", *BACKENDS])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None for the unit tests' in-memory fakes, else the database URL of the backend."""
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
async def store(backend_url: str | None) -> AsyncIterator[UnitOfWorkFactory]:
    """Every implementation of the repositories: the unit tests' in-memory fakes, SQLite and PostgreSQL."""
    if backend_url is None:
        yield MemoryStore()
        return
    engine = create_engine(backend_url)
    await migrate(engine)
    yield SqlUnitOfWorkFactory(engine)
    await engine.dispose()


def _id() -> str:
    return str(uuid.uuid4())


async def _chat(store: UnitOfWorkFactory, *users: str, at: datetime = NOW, direct: bool = False) -> Chat:
    kind = ChatKind.DIRECT if direct else ChatKind.GROUP
    key = ":".join(sorted(users)) if direct else None
    chat = Chat(_id(), kind, None if direct else "Team", at, at, direct_key=key)
    async with store() as uow:
        assert await uow.chats.add(chat)
        for index, user in enumerate(users):
            await uow.members.add(Member(chat.id, user, Role.OWNER if index == 0 else Role.MEMBER, at))
        await uow.commit()
    return chat


async def _send(store: UnitOfWorkFactory, chat: Chat, sender: str, count: int = 1) -> list[Message]:
    async with store() as uow:
        last = (await uow.chats.take_seqs({chat.id: count}, NOW))[chat.id]
        seqs = range(last - count + 1, last + 1)
        sent = [Message(_id(), chat.id, seq, sender, _id(), f"message {seq}", NOW) for seq in seqs]
        await uow.messages.add_many(sent)
        await uow.commit()
    return sent


async def test_a_chat_round_trips_with_utc_times(store: UnitOfWorkFactory) -> None:
    chat = await _chat(store, "a", "b")
    async with store(write=False) as uow:
        found = await uow.chats.get(chat.id)
        assert found == chat
        assert found is not None
        assert found.created_at.tzinfo is not None
        assert await uow.chats.member_version(chat.id) == (ChatKind.GROUP, 0, "Team")
        assert await uow.chats.member_version("nope") is None


async def test_one_direct_chat_per_pair_and_the_loser_keeps_a_usable_transaction(store: UnitOfWorkFactory) -> None:
    a, b = _id(), _id()
    first = await _chat(store, a, b, direct=True)
    twin = Chat(_id(), ChatKind.DIRECT, None, NOW, NOW, direct_key=first.direct_key)
    async with store() as uow:
        assert not await uow.chats.add(twin)
        assert await uow.chats.by_direct_key(f"{min(a, b)}:{max(a, b)}") == first


async def test_seq_is_taken_in_the_transaction_and_rolled_back_with_it(store: UnitOfWorkFactory) -> None:
    chat = await _chat(store, "a")
    async with store() as uow:
        assert await uow.chats.take_seqs({chat.id: 2}, NOW) == {chat.id: 2}
        # no commit: the seq goes back with the transaction
    assert [m.seq for m in await _send(store, chat, "a", 3)] == [1, 2, 3]
    async with store(write=False) as uow:
        stored = await uow.chats.get(chat.id)
    assert stored is not None
    assert stored.last_seq == 3


async def test_concurrent_writers_of_one_chat_never_share_or_skip_a_seq(store: UnitOfWorkFactory) -> None:
    chat = await _chat(store, "a")
    await asyncio.gather(*(_send(store, chat, f"u{i}", 1 + i % 2) for i in range(20)))
    async with store(write=False) as uow:
        page = await uow.messages.page(chat.id, after=0, before=None, limit=100)
    assert [m.seq for m in page] == list(range(1, 31))


async def test_the_same_sender_and_client_id_cannot_be_stored_twice(store: UnitOfWorkFactory) -> None:
    chat = await _chat(store, "a")
    (message,) = await _send(store, chat, "a")
    async with store(write=False) as uow:
        keys = [("a", message.client_id), ("b", message.client_id), ("a", "other")]
        assert await uow.messages.by_client_ids(keys) == {("a", message.client_id): message}
        assert await uow.messages.by_client_ids([]) == {}
    duplicate = Message(_id(), chat.id, 2, "a", message.client_id, "again", NOW)
    async with store() as uow:
        with pytest.raises(ConcurrentWrite):
            await uow.messages.add_many([duplicate])


async def test_edits_and_tombstones_are_saved(store: UnitOfWorkFactory) -> None:
    chat = await _chat(store, "a")
    (message,) = await _send(store, chat, "a")
    later = NOW + timedelta(minutes=1)
    async with store() as uow:
        await uow.messages.save(message.edit("edited", later).delete("b", later))
        await uow.commit()
    async with store(write=False) as uow:
        stored = await uow.messages.get(chat.id, message.id)
        assert await uow.messages.get("other-chat", message.id) is None
    assert stored is not None
    assert (stored.body, stored.edited_at, stored.deleted_at, stored.deleted_by) == ("", later, later, "b")


async def test_reactions_are_stored_once_per_user_and_emoji_read_with_their_messages_and_go_with_a_deletion(
    store: UnitOfWorkFactory,
) -> None:
    chat = await _chat(store, "a", "b", "c")
    first, second = await _send(store, chat, "a", 2)
    thumbs, heart = REACTIONS[0], REACTIONS[1]
    async with store() as uow:
        for user, message, emoji, at in [
            ("c", first, thumbs, NOW),
            ("b", first, thumbs, NOW + timedelta(seconds=1)),
            ("b", first, heart, NOW),
            ("a", second, heart, NOW),
        ]:
            await uow.messages.set_reaction(message.id, user, emoji, add=True, at=at)
        await uow.commit()
    async with store() as uow:
        await uow.messages.set_reaction(second.id, "a", heart, add=False, at=NOW)
        await uow.commit()
    async with store(write=False) as uow:
        page = await uow.messages.page(chat.id, after=0, before=None, limit=10)
        got = await uow.messages.get(chat.id, first.id)
    expected = (Reaction(thumbs, ("c", "b")), Reaction(heart, ("b",)))
    assert [m.reactions for m in page] == [expected, ()]
    assert got is not None
    assert got.reactions == expected
    async with store() as uow:
        await uow.messages.save(got.delete("a", NOW))
        await uow.commit()
    async with store(write=False) as uow:
        assert [m.reactions for m in await uow.messages.page(chat.id, after=None, before=None, limit=10)] == [(), ()]


async def test_a_reply_is_read_with_a_quote_of_the_message_it_answers_as_that_message_is_now(
    store: UnitOfWorkFactory,
) -> None:
    chat = await _chat(store, "a", "b")
    (question,) = await _send(store, chat, "a")
    async with store() as uow:
        (seq,) = (await uow.chats.take_seqs({chat.id: 1}, NOW)).values()
        reply = Message(_id(), chat.id, seq, "b", _id(), "an answer", NOW, reply_to=question.quote())
        await uow.messages.add_many([reply])
        assert await uow.messages.by_ids([question.id, "absent"]) == {question.id: question}
        await uow.commit()
    async with store(write=False) as uow:
        assert [m.reply_to for m in await uow.messages.page(chat.id, after=0, before=None, limit=5)] == [
            None,
            question.quote(),
        ]
    async with store() as uow:
        await uow.messages.save(question.edit("the question, edited", NOW))
        await uow.commit()
    async with store(write=False) as uow:
        stored = await uow.messages.get(chat.id, reply.id)
    assert stored is not None
    assert stored.reply_to is not None
    assert stored.reply_to.preview == "the question, edited"


@pytest.mark.parametrize(
    ("after", "before", "limit", "expected"),
    [
        (None, None, 3, [8, 9, 10]),
        (0, None, 3, [1, 2, 3]),
        (8, None, 5, [9, 10]),
        (None, 4, 5, [1, 2, 3]),
        (None, 6, 2, [4, 5]),
        (2, 9, 3, [3, 4, 5]),
        (10, None, 5, []),
    ],
)
async def test_history_pages_by_seq(
    store: UnitOfWorkFactory, after: int | None, before: int | None, limit: int, expected: list[int]
) -> None:
    chat = await _chat(store, "a")
    await _send(store, chat, "a", 10)
    async with store(write=False) as uow:
        page = await uow.messages.page(chat.id, after=after, before=before, limit=limit)
    assert [m.seq for m in page] == expected


async def test_read_cursors_only_move_forward(store: UnitOfWorkFactory) -> None:
    chat = await _chat(store, "a", "b")
    async with store() as uow:
        await uow.members.advance_reads([ReadMove(chat.id, "b", 5)])
        await uow.members.advance_reads([ReadMove(chat.id, "b", 3), ReadMove(chat.id, "stranger", 9)])
        await uow.commit()
    async with store(write=False) as uow:
        assert {m.user_id: m.read_seq for m in await uow.members.of_chat(chat.id)} == {"a": 0, "b": 5}


async def test_a_batch_takes_seqs_and_moves_cursors_of_many_chats_at_once(store: UnitOfWorkFactory) -> None:
    one, two, absent = await _chat(store, "a", "b"), await _chat(store, "a"), _id()
    await _send(store, one, "a", 2)
    async with store() as uow:
        assert await uow.chats.take_seqs({one.id: 3, two.id: 1, absent: 4}, NOW) == {one.id: 5, two.id: 1}
        await uow.members.advance_reads([ReadMove(one.id, "a", 5), ReadMove(one.id, "b", 2), ReadMove(two.id, "a", 1)])
        versions = await uow.chats.member_versions([two.id, one.id, absent], lock=True)
        assert versions == {one.id: (ChatKind.GROUP, 0, "Team"), two.id: (ChatKind.GROUP, 0, "Team")}
        members = await uow.chats.member_versions([], lock=True)
        assert members == {}
        found = await uow.members.of_chats([one.id, two.id, absent])
        await uow.commit()
    assert {chat_id: [m.user_id for m in rows] for chat_id, rows in found.items()} == {
        one.id: ["a", "b"],
        two.id: ["a"],
    }
    async with store(write=False) as uow:
        cursors = {m.user_id: m.read_seq for m in await uow.members.of_chat(one.id)}
    assert cursors == {"a": 5, "b": 2}


async def test_the_outbox_keeps_entries_by_writer_until_removed(store: UnitOfWorkFactory) -> None:
    async with store() as uow:
        w1, w2 = _id(), _id()
        first = await uow.outbox.add(w1, b"one")
        second = await uow.outbox.add(w2, b"two")
        third = await uow.outbox.add(w1, b"three")
        await uow.commit()
    assert first < second < third
    async with store() as uow:
        assert [(e.id, e.payload) for e in await uow.outbox.of_writer(w1, 10)] == [(first, b"one"), (third, b"three")]
        orphans = await uow.outbox.orphans([w1], 10)
        assert [e.payload for e in orphans] == [b"two"]
        await uow.outbox.remove([first, second])
        await uow.commit()
    async with store() as uow:
        assert [e.payload for e in await uow.outbox.orphans([w2], 10)] == [b"three"]
        assert await uow.outbox.orphans([w1, w2], 10) == []
        await uow.outbox.remove([third])  # the database is shared with the other tests of the run
        await uow.commit()


async def test_mentioned_usernames_resolve_to_known_users(store: UnitOfWorkFactory) -> None:
    ada = ProjectedUser(_id(), f"ada{_id()[:8]}", "Ada")
    async with store() as uow:
        await uow.users.add_many([ada])
        await uow.commit()
    async with store(write=False) as uow:
        assert await uow.users.ids_by_username([ada.username, "nobody-here"]) == {ada.username: ada.id}
        assert await uow.users.ids_by_username([]) == {}


async def test_membership_changes_bump_the_version(store: UnitOfWorkFactory) -> None:
    chat = await _chat(store, "a", "b")
    async with store() as uow:
        await uow.members.set_role(chat.id, "b", Role.ADMIN)
        await uow.members.remove(chat.id, "a")
        assert await uow.chats.bump_member_version(chat.id) == 1
        assert await uow.chats.member_version(chat.id, lock=True) == (ChatKind.GROUP, 1, "Team")
        await uow.commit()
    async with store(write=False) as uow:
        assert [(m.user_id, m.role) for m in await uow.members.of_chat(chat.id)] == [("b", Role.ADMIN)]


async def test_summaries_list_a_users_chats_by_activity_with_the_last_message(store: UnitOfWorkFactory) -> None:
    user = _id()
    old = await _chat(store, user, at=NOW - timedelta(hours=2))
    new = await _chat(store, user, at=NOW - timedelta(hours=1))
    await _chat(store, "someone-else")
    await _send(store, old, user, 2)  # moves `old` to NOW: the most recent
    async with store() as uow:
        await uow.members.advance_reads([ReadMove(old.id, user, 1)])
        await uow.commit()
    async with store(write=False) as uow:
        first = await uow.chats.summaries(user, 1, None)
        rest = await uow.chats.summaries(user, 5, ChatCursor(first[0].chat.last_activity_at, first[0].chat.id))
    assert [s.chat.id for s in first + rest] == [old.id, new.id]
    top = first[0]
    assert (top.role, top.read_seq, top.unread, top.chat.last_seq) == (Role.OWNER, 1, 1, 2)
    assert top.last_message is not None
    assert (top.last_message.seq, top.last_message.body) == (2, "message 2")
    assert rest[0].last_message is None


async def test_the_users_projection_ignores_repeats(store: UnitOfWorkFactory) -> None:
    user, other = ProjectedUser(_id(), "ann", "Ann"), ProjectedUser(_id(), "bea", "Bea")
    async with store() as uow:
        await uow.users.add_many([user, user])
        await uow.users.add_many([ProjectedUser(user.id, "renamed", "Not Ann"), other])
        await uow.users.add_many([])
        await uow.commit()
    async with store(write=False) as uow:
        assert await uow.users.known([user.id, other.id, "ghost"]) == {user.id, other.id}
        assert await uow.users.ids_by_username(["ann", "renamed"]) == {"ann": user.id}
        assert await uow.users.known([]) == set()
