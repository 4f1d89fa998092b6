"""messaging: users projection, chats, members, messages

Revision ID: messaging_0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from parlour.common.db import UtcDateTime

revision: str = "messaging_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("messaging",)
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messaging_users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
    )
    op.create_table(
        "messaging_chats",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(128), nullable=True),
        sa.Column("direct_key", sa.String(80), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_activity_at", UtcDateTime(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("member_version", sa.BigInteger(), nullable=False, server_default="0"),
        sa.UniqueConstraint("direct_key", name="uq_messaging_chats_direct_key"),
    )
    op.create_table(
        "messaging_members",
        sa.Column("chat_id", sa.String(36), sa.ForeignKey("messaging_chats.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("read_seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("joined_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "user_id", name="pk_messaging_members"),
    )
    op.create_index("ix_messaging_members_user_id", "messaging_members", ["user_id"])
    op.create_table(
        "messaging_messages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("chat_id", sa.String(36), sa.ForeignKey("messaging_chats.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("edited_at", UtcDateTime(), nullable=True),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
        sa.Column("deleted_by", sa.String(36), nullable=True),
        sa.UniqueConstraint("chat_id", "seq", name="uq_messaging_messages_chat_seq"),
        sa.UniqueConstraint("sender_id", "client_id", name="uq_messaging_messages_sender_client"),
    )


def downgrade() -> None:
    op.drop_table("messaging_messages")
    op.drop_index("ix_messaging_members_user_id", "messaging_members")
    op.drop_table("messaging_members")
    op.drop_table("messaging_chats")
    op.drop_table("messaging_users")
