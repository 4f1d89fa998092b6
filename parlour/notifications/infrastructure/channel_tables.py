"""The notification channels' tables (SQLAlchemy Core); migration 0002_notifications_channels creates them.

- `notifications_push_subscriptions`: a browser's Web Push subscription (endpoint unique: a browser that
  subscribes again under another user moves it), with its encryption keys.
- `notifications_webhooks`: a user's webhook endpoint, its signing secret and how its deliveries go
  (`last_status`, `failing_since`; `enabled` false with a `disabled_reason` once it failed for too long).
- `notifications_deliveries`: one row per notification and channel, the delivery worker's queue:
  `state` (parlour.notifications.domain.delivery.DeliveryState), `attempts`, `next_attempt_at` (also the
  lease of a row a worker took), the encoded `payload` and the `last_error`.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from parlour.common.db import UtcDateTime

metadata = MetaData()

ENDPOINT_MAX = 2048
URL_MAX = 2048

push_subscriptions = Table(
    "notifications_push_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("endpoint", String(ENDPOINT_MAX), nullable=False, unique=True),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_notifications_push_subscriptions_user", "user_id"),
)

webhooks = Table(
    "notifications_webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("url", String(URL_MAX), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("enabled", Boolean(), nullable=False),
    Column("disabled_reason", Text(), nullable=True),
    Column("failing_since", UtcDateTime(), nullable=True),
    Column("last_status", Integer(), nullable=True),
    Column("last_attempt_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_notifications_webhooks_user", "user_id"),
)

deliveries = Table(
    "notifications_deliveries",
    metadata,
    Column("notification_id", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("payload", LargeBinary(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("last_error", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("notification_id", "kind", "channel_id", name="pk_notifications_deliveries"),
    Index("ix_notifications_deliveries_due", "state", "next_attempt_at"),
)
