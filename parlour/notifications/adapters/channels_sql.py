"""The channels' SQL repositories (SQLite and PostgreSQL alike): subscriptions, webhooks, the delivery queue.

The queue is shared by every notifications process: `take_due` leases the rows it returns by moving their
`next_attempt_at` to the end of the lease, in the transaction that selected them, with `FOR UPDATE SKIP
LOCKED` on PostgreSQL so that two workers never take the same row (SQLite has one writer: the transaction
alone does it). A worker that dies leaves its rows to be taken again when the lease lapses.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parlour.common.db import SqlUnitOfWork, in_slices
from parlour.notifications.application.channel_ports import ChannelStore, DeliveryQueue
from parlour.notifications.domain.channels import Delivery, DeliveryKey, PushSubscription, Webhook
from parlour.notifications.domain.delivery import ChannelKind, DeliveryState
from parlour.notifications.infrastructure.channel_tables import deliveries, push_subscriptions, webhooks

_TAKEN = (DeliveryState.PENDING.value, DeliveryState.PARKING.value)


class _Work(SqlUnitOfWork):
    connection: AsyncConnection

    def _attach(self, connection: AsyncConnection) -> None:
        self.connection = connection


def _insert(connection: AsyncConnection, table: Any) -> Any:
    return (postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert)(table)


def _subscription(row: Row[Any]) -> PushSubscription:
    return PushSubscription(row.id, row.user_id, row.endpoint, row.p256dh, row.auth, row.created_at)


def _webhook(row: Row[Any]) -> Webhook:
    return Webhook(
        id=row.id,
        user_id=row.user_id,
        url=row.url,
        secret=row.secret,
        enabled=row.enabled,
        created_at=row.created_at,
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
        last_status=row.last_status,
        last_attempt_at=row.last_attempt_at,
    )


def _delivery(row: Row[Any]) -> Delivery:
    key = DeliveryKey(row.notification_id, ChannelKind(row.kind), row.channel_id)
    return Delivery(
        key, row.user_id, row.payload, row.attempts, row.next_attempt_at, DeliveryState(row.state), row.last_error
    )


def _is(key: DeliveryKey) -> Any:
    return (
        (deliveries.c.notification_id == key.notification_id)
        & (deliveries.c.kind == key.kind.value)
        & (deliveries.c.channel_id == key.channel_id)
    )


async def _rows_by_id(engine: AsyncEngine, table: Any, ids: Collection[str]) -> list[Row[Any]]:
    """The rows of `table` with these ids."""
    found: list[Row[Any]] = []
    async with engine.connect() as connection:
        for part in in_slices(sorted(ids)):
            found.extend(await connection.execute(select(table).where(table.c.id.in_(part))))
    return found


class SqlChannelStore(ChannelStore):
    """`notifications_push_subscriptions` and `notifications_webhooks`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save_subscription(self, subscription: PushSubscription) -> tuple[PushSubscription, bool]:
        table = push_subscriptions
        async with _Work(self._engine) as work:
            found = await work.connection.execute(select(table).where(table.c.endpoint == subscription.endpoint))
            row = found.first()
            if row is None:
                await work.connection.execute(
                    table.insert().values(
                        id=subscription.id,
                        user_id=subscription.user_id,
                        endpoint=subscription.endpoint,
                        p256dh=subscription.p256dh,
                        auth=subscription.auth,
                        created_at=subscription.created_at,
                    )
                )
                await work.commit()
                return subscription, True
            keys = {"user_id": subscription.user_id, "p256dh": subscription.p256dh, "auth": subscription.auth}
            await work.connection.execute(update(table).where(table.c.id == row.id).values(**keys))
            await work.commit()
        return PushSubscription(row.id, created_at=row.created_at, endpoint=row.endpoint, **keys), False

    async def subscriptions(self, user_id: str) -> list[PushSubscription]:
        table = push_subscriptions
        query = select(table).where(table.c.user_id == user_id).order_by(table.c.created_at, table.c.id)
        async with self._engine.connect() as connection:
            return [_subscription(row) for row in await connection.execute(query)]

    async def subscriptions_by_id(self, subscription_ids: Collection[str]) -> dict[str, PushSubscription]:
        rows = await _rows_by_id(self._engine, push_subscriptions, subscription_ids)
        return {row.id: _subscription(row) for row in rows}

    async def remove_subscription(self, subscription_id: str, user_id: str | None = None) -> bool:
        table = push_subscriptions
        condition = table.c.id == subscription_id
        if user_id is not None:
            condition = condition & (table.c.user_id == user_id)
        async with _Work(self._engine) as work:
            result = await work.connection.execute(delete(table).where(condition))
            await work.commit()
        return bool(result.rowcount)

    async def remove_channels_of(self, user_ids: Collection[str]) -> None:
        if not user_ids:
            return
        async with _Work(self._engine) as work:
            for table in (push_subscriptions, webhooks):
                await work.connection.execute(delete(table).where(table.c.user_id.in_(list(user_ids))))
            await work.commit()

    async def save_webhook(self, webhook: Webhook) -> None:
        async with _Work(self._engine) as work:
            await work.connection.execute(
                webhooks.insert().values(
                    id=webhook.id,
                    user_id=webhook.user_id,
                    url=webhook.url,
                    secret=webhook.secret,
                    enabled=webhook.enabled,
                    created_at=webhook.created_at,
                )
            )
            await work.commit()

    async def webhooks(self, user_id: str) -> list[Webhook]:
        query = select(webhooks).where(webhooks.c.user_id == user_id).order_by(webhooks.c.created_at, webhooks.c.id)
        async with self._engine.connect() as connection:
            return [_webhook(row) for row in await connection.execute(query)]

    async def webhooks_by_id(self, webhook_ids: Collection[str]) -> dict[str, Webhook]:
        return {row.id: _webhook(row) for row in await _rows_by_id(self._engine, webhooks, webhook_ids)}

    async def remove_webhook(self, webhook_id: str, user_id: str) -> bool:
        condition = (webhooks.c.id == webhook_id) & (webhooks.c.user_id == user_id)
        async with _Work(self._engine) as work:
            result = await work.connection.execute(delete(webhooks).where(condition))
            await work.commit()
        return bool(result.rowcount)

    async def record_webhook_attempt(
        self, webhook_id: str, status: int | None, at: datetime, failing_since: datetime | None
    ) -> None:
        values = {"last_status": status, "last_attempt_at": at, "failing_since": failing_since}
        await self._update_webhook(webhook_id, values)

    async def record_webhook_deliveries(self, delivered: Sequence[tuple[str, int, datetime]]) -> None:
        if not delivered:
            return
        statement = (
            update(webhooks)
            .where(webhooks.c.id == bindparam("k_id"))
            .values(last_status=bindparam("v_status"), last_attempt_at=bindparam("v_at"), failing_since=None)
        )
        rows = [{"k_id": webhook_id, "v_status": status, "v_at": at} for webhook_id, status, at in sorted(delivered)]
        async with _Work(self._engine) as work:
            await work.connection.execute(statement, rows)
            await work.commit()

    async def disable_webhook(self, webhook_id: str, reason: str) -> None:
        await self._update_webhook(webhook_id, {"enabled": False, "disabled_reason": reason})

    async def _update_webhook(self, webhook_id: str, values: dict[str, Any]) -> None:
        async with _Work(self._engine) as work:
            await work.connection.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values))
            await work.commit()

    async def channels_of(self, user_ids: Collection[str]) -> dict[str, list[tuple[ChannelKind, str]]]:
        found: dict[str, list[tuple[ChannelKind, str]]] = {}
        async with self._engine.connect() as connection:
            for part in in_slices(sorted(user_ids)):
                subscribed = select(push_subscriptions.c.user_id, push_subscriptions.c.id).where(
                    push_subscriptions.c.user_id.in_(part)
                )
                for user_id, channel_id in await connection.execute(subscribed):
                    found.setdefault(user_id, []).append((ChannelKind.PUSH, channel_id))
                hooked = select(webhooks.c.user_id, webhooks.c.id).where(
                    webhooks.c.user_id.in_(part), webhooks.c.enabled.is_(True)
                )
                for user_id, channel_id in await connection.execute(hooked):
                    found.setdefault(user_id, []).append((ChannelKind.WEBHOOK, channel_id))
        return found


class SqlDeliveryQueue(DeliveryQueue):
    """`notifications_deliveries`, leased row by row to the workers of every process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, rows: Sequence[Delivery]) -> int:
        values = [
            {
                "notification_id": row.key.notification_id,
                "kind": row.key.kind.value,
                "channel_id": row.key.channel_id,
                "user_id": row.user_id,
                "payload": row.payload,
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at,
                "state": row.state.value,
                "created_at": row.next_attempt_at,
            }
            for row in rows
        ]
        async with _Work(self._engine) as work:
            held = await self._held(work.connection, sorted({row.key.notification_id for row in rows}))
            fresh = [v for v in values if (v["notification_id"], v["kind"], v["channel_id"]) not in held]
            if fresh:  # one statement for them all; a row another process added meanwhile is skipped
                statement = _insert(work.connection, deliveries).on_conflict_do_nothing(
                    index_elements=["notification_id", "kind", "channel_id"]
                )
                await work.connection.execute(statement, fresh)
            await work.commit()
        return len(fresh)

    async def _held(self, connection: AsyncConnection, notification_ids: list[str]) -> set[tuple[str, str, str]]:
        held: set[tuple[str, str, str]] = set()
        columns = (deliveries.c.notification_id, deliveries.c.kind, deliveries.c.channel_id)
        for part in in_slices(notification_ids):
            rows = await connection.execute(select(*columns).where(deliveries.c.notification_id.in_(part)))
            held.update((row[0], row[1], row[2]) for row in rows)
        return held

    async def take_due(self, now: datetime, limit: int, lease_until: datetime) -> list[Delivery]:
        query = (
            select(deliveries)
            .where(deliveries.c.state.in_(_TAKEN), deliveries.c.next_attempt_at <= now)
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
        )
        async with _Work(self._engine) as work:
            if work.connection.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            taken = [_delivery(row) for row in await work.connection.execute(query)]
            for delivery in taken:
                await work.connection.execute(
                    update(deliveries).where(_is(delivery.key)).values(next_attempt_at=lease_until)
                )
            await work.commit()
        return taken

    async def next_due(self) -> datetime | None:
        column = deliveries.c.next_attempt_at
        query = select(column).where(deliveries.c.state.in_(_TAKEN)).order_by(column).limit(1)
        async with self._engine.connect() as connection:
            earliest: datetime | None = (await connection.execute(query)).scalar()
        return earliest

    async def finish(self, key: DeliveryKey, state: DeliveryState, attempts: int, error: str | None) -> None:
        await self._update(key, {"state": state.value, "attempts": attempts, "last_error": error})

    async def finish_done(self, delivered: Sequence[tuple[DeliveryKey, int]]) -> None:
        if not delivered:
            return
        statement = (
            update(deliveries)
            .where(
                deliveries.c.notification_id == bindparam("k_id"),
                deliveries.c.kind == bindparam("k_kind"),
                deliveries.c.channel_id == bindparam("k_channel"),
            )
            .values(state=DeliveryState.DONE.value, attempts=bindparam("v_attempts"), last_error=None)
        )
        rows = [
            {"k_id": k.notification_id, "k_kind": k.kind.value, "k_channel": k.channel_id, "v_attempts": attempts}
            for k, attempts in sorted(
                delivered, key=lambda done: (done[0].notification_id, done[0].kind, done[0].channel_id)
            )
        ]
        async with _Work(self._engine) as work:
            await work.connection.execute(statement, rows)
            await work.commit()

    async def retry(self, key: DeliveryKey, attempts: int, at: datetime, error: str) -> None:
        values = {
            "state": DeliveryState.PENDING.value,
            "attempts": attempts,
            "next_attempt_at": at,
            "last_error": error,
        }
        await self._update(key, values)

    async def start_parking(self, key: DeliveryKey, attempts: int, error: str, lease_until: datetime) -> None:
        values = {"state": DeliveryState.PARKING.value, "attempts": attempts, "next_attempt_at": lease_until}
        await self._update(key, {**values, "last_error": error})

    async def state_of(self, key: DeliveryKey) -> DeliveryState | None:
        async with self._engine.connect() as connection:
            state = (await connection.execute(select(deliveries.c.state).where(_is(key)))).scalar()
        return None if state is None else DeliveryState(state)

    async def set_state(self, key: DeliveryKey, state: DeliveryState, *, only_from: DeliveryState) -> bool:
        condition = _is(key) & (deliveries.c.state == only_from.value)
        return await self._update_where(condition, {"state": state.value})

    async def revive(self, key: DeliveryKey, at: datetime) -> bool:
        condition = _is(key) & (deliveries.c.state == DeliveryState.PARKED.value)
        values = {"state": DeliveryState.PENDING.value, "attempts": 0, "next_attempt_at": at}
        return await self._update_where(condition, values)

    async def purge(self, before: datetime) -> int:
        finished = (DeliveryState.DONE.value, DeliveryState.DROPPED.value)
        condition = deliveries.c.state.in_(finished) & (deliveries.c.created_at < before)
        async with _Work(self._engine) as work:
            result = await work.connection.execute(delete(deliveries).where(condition))
            await work.commit()
        return int(result.rowcount or 0)

    async def _update(self, key: DeliveryKey, values: dict[str, Any]) -> None:
        await self._update_where(_is(key), values)

    async def _update_where(self, condition: Any, values: dict[str, Any]) -> bool:
        async with _Work(self._engine) as work:
            result = await work.connection.execute(update(deliveries).where(condition).values(**values))
            await work.commit()
        return bool(result.rowcount)
