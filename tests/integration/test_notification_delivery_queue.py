"""The delivery queue's SQL (SQLite and PostgreSQL): insert-or-ignore, leases, parking states, the purge,
and the successes written together with their webhooks' status."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.common.db import create_engine
from parlour.notifications.adapters.channels_sql import SqlChannelStore, SqlDeliveryQueue
from parlour.notifications.domain.channels import Delivery, DeliveryKey, PushSubscription, Webhook
from parlour.notifications.domain.delivery import ChannelKind, DeliveryState
from tests.databases import migrate_database

T0 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate_database(database_url)
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def _delivery(at: datetime = T0, channel: str = "c1") -> Delivery:
    key = DeliveryKey(f"chat:{uuid.uuid4().hex}:1", ChannelKind.WEBHOOK, channel)
    return Delivery(key, "u1", b"{}", 0, at, DeliveryState.PENDING)


async def _mine(queue: SqlDeliveryQueue, keys: set[DeliveryKey], now: datetime) -> list[Delivery]:
    """The due deliveries of this test (the PostgreSQL database is shared by the run's tests)."""
    taken = await queue.take_due(now, 1000, now + timedelta(seconds=30))
    return [d for d in taken if d.key in keys]


async def test_a_delivery_is_added_once_and_leased_to_one_taker_until_its_lease_lapses(engine: AsyncEngine) -> None:
    queue = SqlDeliveryQueue(engine)
    first, second = _delivery(), _delivery(channel="c2")
    assert await queue.add([first, second]) == 2
    assert await queue.add([first]) == 0
    keys = {first.key, second.key}

    taken = await _mine(queue, keys, T0)
    assert {d.key for d in taken} == keys
    assert await _mine(queue, keys, T0 + timedelta(seconds=29)) == [], "leased"
    again = await _mine(queue, keys, T0 + timedelta(seconds=31))
    assert {d.key for d in again} == keys, "a lapsed lease is taken again"


async def test_concurrent_takers_never_share_a_delivery(engine: AsyncEngine) -> None:
    queue = SqlDeliveryQueue(engine)
    rows = [_delivery(channel=f"c{n}") for n in range(40)]
    await queue.add(rows)
    keys = {row.key for row in rows}
    now = T0 + timedelta(minutes=5)
    takes = await asyncio.gather(*(queue.take_due(now, 10, now + timedelta(seconds=30)) for _ in range(6)))
    taken = [d.key for take in takes for d in take if d.key in keys]
    assert len(taken) == len(set(taken)), "no delivery went to two takers"


async def test_retry_parking_replay_and_finish_move_a_delivery_through_its_states(engine: AsyncEngine) -> None:
    queue = SqlDeliveryQueue(engine)
    row = _delivery(at=T0 + timedelta(hours=1))
    await queue.add([row])
    key = row.key
    await queue.retry(key, 1, T0 + timedelta(hours=2), "HTTP 503")
    assert await queue.state_of(key) is DeliveryState.PENDING
    await queue.start_parking(key, 8, "gave up", T0 + timedelta(hours=3))
    assert await queue.set_state(key, DeliveryState.PARKED, only_from=DeliveryState.PARKING)
    assert not await queue.set_state(key, DeliveryState.PARKED, only_from=DeliveryState.PARKING)
    assert await _mine(queue, {key}, T0 + timedelta(hours=5)) == [], "a parked delivery is not taken"
    assert await queue.revive(key, T0 + timedelta(hours=4))
    assert not await queue.revive(key, T0 + timedelta(hours=4))
    (revived,) = await _mine(queue, {key}, T0 + timedelta(hours=5))
    assert revived.attempts == 0
    await queue.finish(key, DeliveryState.DONE, 1, None)
    assert await queue.state_of(key) is DeliveryState.DONE
    assert await queue.state_of(DeliveryKey("nothing", ChannelKind.PUSH, "x")) is None


async def test_the_purge_deletes_only_finished_deliveries_older_than_asked(engine: AsyncEngine) -> None:
    queue = SqlDeliveryQueue(engine)
    old_done, old_pending, new_done = _delivery(), _delivery(channel="c2"), _delivery(at=T0 + timedelta(days=8))
    await queue.add([old_done, old_pending, new_done])
    await queue.finish(old_done.key, DeliveryState.DONE, 1, None)
    await queue.finish(new_done.key, DeliveryState.DONE, 1, None)
    await queue.purge(T0 + timedelta(days=7))
    assert await queue.state_of(old_done.key) is None
    assert await queue.state_of(old_pending.key) is DeliveryState.PENDING
    assert await queue.state_of(new_done.key) is DeliveryState.DONE


async def test_successes_are_marked_done_together_and_their_webhooks_are_no_longer_failing(engine: AsyncEngine) -> None:
    queue, store = SqlDeliveryQueue(engine), SqlChannelStore(engine)
    first, second, third = (_delivery(channel=f"c{n}") for n in range(3))
    await queue.add([first, second, third])
    await queue.finish_done([(first.key, 1), (second.key, 3)])
    assert [await queue.state_of(d.key) for d in (first, second, third)] == [
        DeliveryState.DONE,
        DeliveryState.DONE,
        DeliveryState.PENDING,
    ]

    hook = Webhook(f"wh-{uuid.uuid4().hex}", "u1", "https://example.com/hook", "secret", True, T0)
    await store.save_webhook(hook)
    await store.record_webhook_attempt(hook.id, 503, T0, T0)
    found = await store.webhooks_by_id({hook.id, "gone"})
    assert list(found) == [hook.id], "one that is not there is left out"
    assert (found[hook.id].last_status, found[hook.id].failing_since) == (503, T0)
    await store.record_webhook_deliveries([(hook.id, 204, T0 + timedelta(minutes=1))])
    after = (await store.webhooks_by_id([hook.id]))[hook.id]
    assert (after.last_status, after.last_attempt_at, after.failing_since) == (204, T0 + timedelta(minutes=1), None)


async def test_a_deleted_users_subscriptions_and_webhooks_all_go_and_nobody_elses(engine: AsyncEngine) -> None:
    store = SqlChannelStore(engine)
    gone, stays = f"u-{uuid.uuid4().hex}", f"u-{uuid.uuid4().hex}"
    for user in (gone, stays):
        for n in range(2):
            endpoint = f"https://push.example/{user}/{n}"
            await store.save_subscription(PushSubscription(f"ps-{uuid.uuid4().hex}", user, endpoint, "k", "a", T0))
            hook = f"https://example.com/{user}/{n}"
            await store.save_webhook(Webhook(f"wh-{uuid.uuid4().hex}", user, hook, "secret", True, T0))
    await store.remove_channels_of({gone})
    assert await store.subscriptions(gone) == []
    assert await store.webhooks(gone) == []
    assert len(await store.subscriptions(stays)) == 2
    assert len(await store.webhooks(stays)) == 2
    await store.remove_channels_of(set())  # nothing to do is no statement at all
