"""notifications: the channels (Web Push subscriptions, webhooks) and the deliveries' queue

Revision ID: notifications_0002
Revises: notifications_0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from parlour.common.db import UtcDateTime

revision: str = "notifications_0002"
down_revision: str | None = "notifications_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications_push_subscriptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("p256dh", sa.String(128), nullable=False),
        sa.Column("auth", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("endpoint", name="uq_notifications_push_subscriptions_endpoint"),
    )
    op.create_index("ix_notifications_push_subscriptions_user", "notifications_push_subscriptions", ["user_id"])
    op.create_table(
        "notifications_webhooks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("failing_since", UtcDateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_notifications_webhooks_user", "notifications_webhooks", ["user_id"])
    op.create_table(
        "notifications_deliveries",
        sa.Column("notification_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("notification_id", "kind", "channel_id", name="pk_notifications_deliveries"),
    )
    op.create_index("ix_notifications_deliveries_due", "notifications_deliveries", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_deliveries_due", table_name="notifications_deliveries")
    op.drop_table("notifications_deliveries")
    op.drop_index("ix_notifications_webhooks_user", table_name="notifications_webhooks")
    op.drop_table("notifications_webhooks")
    op.drop_index("ix_notifications_push_subscriptions_user", table_name="notifications_push_subscriptions")
    op.drop_table("notifications_push_subscriptions")
