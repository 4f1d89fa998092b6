"""presence: the membership projection (backfilled from messaging's members) and the privacy setting

Revision ID: presence_0001
Revises:
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "presence_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("presence",)
# The backfill reads messaging's tables: they must exist first.
depends_on: Sequence[str] | None = ("messaging_0001",)


def upgrade() -> None:
    op.create_table(
        "presence_chats",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "presence_members",
        sa.Column("chat_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "user_id", name="pk_presence_members"),
    )
    op.create_index("ix_presence_members_user_chat", "presence_members", ["user_id", "chat_id"])
    op.create_table(
        "presence_settings",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
    )
    # Chats that exist already count: their members now, at their membership version now, so that the
    # events still on their way (older versions) change nothing and the newer ones apply.
    op.execute("INSERT INTO presence_chats (id, version) SELECT id, member_version FROM messaging_chats")
    op.execute("INSERT INTO presence_members (chat_id, user_id) SELECT chat_id, user_id FROM messaging_members")


def downgrade() -> None:
    op.drop_table("presence_settings")
    op.drop_index("ix_presence_members_user_chat", table_name="presence_members")
    op.drop_table("presence_members")
    op.drop_table("presence_chats")
