"""messaging: reactions on messages

Revision ID: messaging_0003
Revises: messaging_0002
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from parlour.common.db import UtcDateTime

revision: str = "messaging_0003"
down_revision: str | None = "messaging_0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messaging_reactions",
        sa.Column(
            "message_id", sa.String(36), sa.ForeignKey("messaging_messages.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("emoji", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "user_id", "emoji", name="pk_messaging_reactions"),
    )


def downgrade() -> None:
    op.drop_table("messaging_reactions")
