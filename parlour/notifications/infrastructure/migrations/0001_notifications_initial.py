"""notifications: preferences, mutes, the read cursors and membership projection, users, pending

Revision ID: notifications_0001
Revises:
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notifications_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("notifications",)
# The backfill reads messaging's tables: they must exist first.
depends_on: Sequence[str] | None = ("messaging_0001",)


def upgrade() -> None:
    op.create_table(
        "notifications_preferences",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("preview", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_table(
        "notifications_mutes",
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("chat_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "chat_id", name="pk_notifications_mutes"),
    )
    op.create_table(
        "notifications_reads",
        sa.Column("chat_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("chat_id", "user_id", name="pk_notifications_reads"),
    )
    op.create_index("ix_notifications_reads_user_chat", "notifications_reads", ["user_id", "chat_id"])
    op.create_table(
        "notifications_chats",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "notifications_users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("display_name", sa.String(64), nullable=False),
    )
    op.create_table(
        "notifications_pending",
        sa.Column("chat_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sender_ids", sa.Text(), nullable=False, server_default=""),
        sa.Column("chat_kind", sa.String(16), nullable=False, server_default="group"),
        sa.Column("chat_title", sa.String(128), nullable=True),
        sa.Column("preview", sa.Text(), nullable=False, server_default=""),
        sa.Column("mentioned", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("due_at", sa.Float(), nullable=True),
        sa.Column("last_sent_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("chat_id", "user_id", name="pk_notifications_pending"),
    )
    op.create_index("ix_notifications_pending_due_at", "notifications_pending", ["due_at"])
    # What exists already counts: every member's cursor and membership version now (older events still
    # on their way change nothing), and the users messaging knows by name.
    op.execute("INSERT INTO notifications_chats (id, version) SELECT id, member_version FROM messaging_chats")
    op.execute(
        "INSERT INTO notifications_reads (chat_id, user_id, seq)"
        " SELECT chat_id, user_id, read_seq FROM messaging_members"
    )
    op.execute("INSERT INTO notifications_users (id, display_name) SELECT id, display_name FROM messaging_users")


def downgrade() -> None:
    op.drop_index("ix_notifications_pending_due_at", table_name="notifications_pending")
    op.drop_table("notifications_pending")
    op.drop_table("notifications_users")
    op.drop_table("notifications_chats")
    op.drop_index("ix_notifications_reads_user_chat", table_name="notifications_reads")
    op.drop_table("notifications_reads")
    op.drop_table("notifications_mutes")
    op.drop_table("notifications_preferences")
