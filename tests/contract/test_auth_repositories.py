"""The auth repositories' contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.auth.adapters.sql import SqlAuthUnitOfWork
from parlour.auth.domain.errors import UsernameTaken
from parlour.auth.domain.model import RefreshToken, RevocationReason, Session, User
from parlour.common.db import create_engine, migrate

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


def _user(name: str | None = None) -> User:
    return User(str(uuid.uuid4()), name or f"user{uuid.uuid4().hex[:10]}", "Someone", NOW)


async def _stored_user(engine: AsyncEngine, name: str | None = None) -> User:
    user = _user(name)
    async with SqlAuthUnitOfWork(engine) as uow:
        await uow.users.add(user, "hash")
        await uow.commit()
    return user


async def _stored_session(engine: AsyncEngine, user: User) -> Session:
    session = Session(str(uuid.uuid4()), user.id, NOW, NOW + timedelta(days=1))
    async with SqlAuthUnitOfWork(engine) as uow:
        await uow.sessions.add(session)
        await uow.commit()
    return session


async def test_a_stored_user_is_found_by_id_and_username(engine: AsyncEngine) -> None:
    user = await _stored_user(engine)
    async with SqlAuthUnitOfWork(engine) as uow:
        assert await uow.users.get(user.id) == user
        credentials = await uow.users.credentials(user.username)
    assert credentials is not None
    assert credentials.user == user
    assert credentials.password_hash == "hash"


async def test_a_taken_username_raises_and_leaves_the_transaction_usable(engine: AsyncEngine) -> None:
    user = await _stored_user(engine)
    other = _user()
    async with SqlAuthUnitOfWork(engine) as uow:
        with pytest.raises(UsernameTaken):
            await uow.users.add(_user(user.username), "hash")
        await uow.users.add(other, "hash")
        await uow.commit()
    async with SqlAuthUnitOfWork(engine) as uow:
        assert await uow.users.get(other.id) == other


async def test_uncommitted_work_is_rolled_back(engine: AsyncEngine) -> None:
    user = _user()
    async with SqlAuthUnitOfWork(engine) as uow:
        await uow.users.add(user, "hash")
    async with SqlAuthUnitOfWork(engine) as uow:
        assert await uow.users.get(user.id) is None


async def test_search_matches_a_literal_prefix_in_order(engine: AsyncEngine) -> None:
    stem = f"s{uuid.uuid4().hex[:8]}_"
    names = [f"{stem}b", f"{stem}a", f"{stem}c"]
    for name in names:
        await _stored_user(engine, name)
    async with SqlAuthUnitOfWork(engine) as uow:
        found = [user.username for user in await uow.users.search(stem, 10)]
        wildcard = await uow.users.search(stem.replace("_", "%"), 10)
        limited = await uow.users.search(stem, 2)
    assert found == sorted(names)
    assert wildcard == []
    assert len(limited) == 2


async def test_sessions_keep_their_revocation(engine: AsyncEngine) -> None:
    user = await _stored_user(engine)
    session = await _stored_session(engine, user)
    revoked = session.revoke(NOW + timedelta(minutes=1), RevocationReason.LOGOUT)
    async with SqlAuthUnitOfWork(engine) as uow:
        await uow.sessions.save(revoked)
        await uow.commit()
    async with SqlAuthUnitOfWork(engine) as uow:
        assert await uow.sessions.get(session.id) == revoked


async def test_sessions_revoked_since_a_time_are_listed_with_when(engine: AsyncEngine) -> None:
    user = await _stored_user(engine)
    old, recent, active = [await _stored_session(engine, user) for _ in range(3)]
    async with SqlAuthUnitOfWork(engine) as uow:
        await uow.sessions.save(old.revoke(NOW - timedelta(minutes=20), RevocationReason.LOGOUT))
        await uow.sessions.save(recent.revoke(NOW - timedelta(minutes=1), RevocationReason.REFRESH_TOKEN_REUSED))
        await uow.commit()
    async with SqlAuthUnitOfWork(engine) as uow:
        listed = dict(await uow.sessions.revoked_since(NOW - timedelta(minutes=15)))
    mine = {session.id for session in (old, recent, active)}
    assert {session_id: at for session_id, at in listed.items() if session_id in mine} == {
        recent.id: NOW - timedelta(minutes=1)
    }


async def test_revoke_all_revokes_and_names_only_active_sessions(engine: AsyncEngine) -> None:
    user = await _stored_user(engine)
    for _ in range(3):
        await _stored_session(engine, user)
    async with SqlAuthUnitOfWork(engine) as uow:
        assert len(await uow.sessions.revoke_all(user.id, NOW, RevocationReason.LOGOUT_ALL)) == 3
        assert await uow.sessions.revoke_all(user.id, NOW, RevocationReason.LOGOUT_ALL) == []
        await uow.commit()


async def test_revoke_all_can_keep_one_session(engine: AsyncEngine) -> None:
    user = await _stored_user(engine)
    kept, *others = [await _stored_session(engine, user) for _ in range(3)]
    async with SqlAuthUnitOfWork(engine) as uow:
        revoked = await uow.sessions.revoke_all(user.id, NOW, RevocationReason.ENDED_BY_USER, keep=kept.id)
        await uow.commit()
    assert sorted(revoked) == sorted(session.id for session in others)
    async with SqlAuthUnitOfWork(engine) as uow:
        assert [session.id for session in await uow.sessions.active(user.id, NOW)] == [kept.id]


async def test_active_sessions_are_the_unrevoked_unexpired_ones_newest_first_with_device_and_last_use(
    engine: AsyncEngine,
) -> None:
    user = await _stored_user(engine)
    sessions = [
        Session(str(uuid.uuid4()), user.id, NOW - timedelta(hours=age), NOW + timedelta(days=1), user_agent=agent)
        for age, agent in ((3, "Firefox"), (1, None), (2, "x" * 256))
    ]
    expired = Session(str(uuid.uuid4()), user.id, NOW - timedelta(days=2), NOW - timedelta(seconds=1))
    revoked = Session(str(uuid.uuid4()), user.id, NOW, NOW + timedelta(days=1))
    async with SqlAuthUnitOfWork(engine) as uow:
        for session in (*sessions, expired, revoked):
            await uow.sessions.add(session)
        await uow.sessions.save(revoked.revoke(NOW, RevocationReason.LOGOUT))
        await uow.sessions.save(replace(sessions[0], last_used_at=NOW))
        await uow.commit()
    async with SqlAuthUnitOfWork(engine) as uow:
        active = await uow.sessions.active(user.id, NOW)
    assert active == [sessions[1], sessions[2], replace(sessions[0], last_used_at=NOW)]


async def test_a_password_hash_is_read_and_replaced_by_user_id(engine: AsyncEngine) -> None:
    user = await _stored_user(engine)
    async with SqlAuthUnitOfWork(engine) as uow:
        assert await uow.users.password_hash(user.id) == "hash"
        await uow.users.set_password_hash(user.id, "new-hash")
        assert await uow.users.password_hash(str(uuid.uuid4())) is None
        await uow.commit()
    async with SqlAuthUnitOfWork(engine) as uow:
        credentials = await uow.users.credentials(user.username)
    assert credentials is not None
    assert credentials.password_hash == "new-hash"


async def test_a_refresh_token_can_be_used_once_even_concurrently(engine: AsyncEngine) -> None:
    user = await _stored_user(engine)
    session = await _stored_session(engine, user)
    token = RefreshToken(uuid.uuid4().hex * 2, session.id, NOW, NOW + timedelta(days=1))
    async with SqlAuthUnitOfWork(engine) as uow:
        await uow.sessions.add_token(token)
        await uow.commit()

    async def use() -> bool:
        async with SqlAuthUnitOfWork(engine) as uow:
            used = await uow.sessions.use_token(token.token_hash, NOW)
            await uow.commit()
            return used

    results = await asyncio.gather(*(use() for _ in range(5)))
    assert results.count(True) == 1
    async with SqlAuthUnitOfWork(engine) as uow:
        stored = await uow.sessions.token(token.token_hash)
    assert stored is not None
    assert stored.used_at == NOW
