"""messaging: a message may reply to another of its chat

Revision ID: messaging_0004
Revises: messaging_0003
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "messaging_0004"
down_revision: str | None = "messaging_0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites no row on either database.
    op.add_column("messaging_messages", sa.Column("reply_to", sa.String(36), nullable=True))


def downgrade() -> None:
    op.drop_column("messaging_messages", "reply_to")
