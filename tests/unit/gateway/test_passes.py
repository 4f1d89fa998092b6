"""One-time passes over the in-memory key-value store, with a clock moved by hand."""

from __future__ import annotations

import pytest

from parlour.common.clock import ManualClock
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.common.ratelimit import RateLimiter
from parlour.gateway.application.passes import IssuePass, PassBook, PassPolicy
from parlour.gateway.domain.errors import PassRejected, TooManyPasses
from parlour.gateway.domain.passes import PASS_BYTES, PassHolder, pass_key


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def kv(clock: ManualClock) -> InMemoryKeyValueStore:
    return InMemoryKeyValueStore(clock)


@pytest.fixture
def book(kv: InMemoryKeyValueStore) -> PassBook:
    return PassBook(kv, RateLimiter(kv, prefix="p"), PassPolicy(ttl_seconds=30, issue_limit=3, issue_window_seconds=60))


async def test_a_pass_is_256_random_bits_stored_only_hashed(book: PassBook, kv: InMemoryKeyValueStore) -> None:
    issued = await book.issue(IssuePass("alice", "auth-1"))
    assert issued.expires_in == 30
    assert len(issued.secret) >= PASS_BYTES * 4 // 3
    assert await kv.get(issued.secret) is None
    assert await kv.get(pass_key(issued.secret)) is not None
    assert issued.secret not in pass_key(issued.secret)


async def test_a_pass_is_redeemed_once_for_its_user(book: PassBook) -> None:
    issued = await book.issue(IssuePass("alice", "auth-1"))
    assert await book.redeem(issued.secret) == PassHolder("alice", "auth-1")
    with pytest.raises(PassRejected):
        await book.redeem(issued.secret)


async def test_an_expired_pass_is_rejected(book: PassBook, clock: ManualClock) -> None:
    issued = await book.issue(IssuePass("alice", "auth-1"))
    clock.advance(30.01)
    with pytest.raises(PassRejected):
        await book.redeem(issued.secret)


@pytest.mark.parametrize("secret", [None, "", "forged", "x" * 5000, "ünïcode"])
async def test_missing_forged_and_implausible_passes_are_rejected(book: PassBook, secret: str | None) -> None:
    with pytest.raises(PassRejected):
        await book.redeem(secret)


async def test_issuing_is_rate_limited_per_user(book: PassBook, clock: ManualClock) -> None:
    for _ in range(3):
        await book.issue(IssuePass("alice", "auth-1"))
    with pytest.raises(TooManyPasses) as refused:
        await book.issue(IssuePass("alice", "auth-1"))
    assert refused.value.retry_after > 0
    await book.issue(IssuePass("bob", "auth-2"))
    clock.advance(60)
    await book.issue(IssuePass("alice", "auth-1"))


async def test_passes_are_all_different(book: PassBook, kv: InMemoryKeyValueStore) -> None:
    many = PassBook(kv, RateLimiter(kv, prefix="q"), PassPolicy(30, 1000, 60))
    secrets = {(await many.issue(IssuePass("alice", "a"))).secret for _ in range(200)}
    assert len(secrets) == 200
