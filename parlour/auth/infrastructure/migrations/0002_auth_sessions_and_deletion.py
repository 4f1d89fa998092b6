"""auth: the device (User-Agent) and last use of each session; deleted accounts

Revision ID: auth_0002
Revises: auth_0001
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from parlour.common.db import UtcDateTime

revision: str = "auth_0002"
down_revision: str | None = "auth_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: sessions opened before this revision have neither; they show as "Unknown device".
    with op.batch_alter_table("auth_sessions") as table:
        table.add_column(sa.Column("user_agent", sa.String(256), nullable=True))
        table.add_column(sa.Column("last_used_at", UtcDateTime(), nullable=True))
    with op.batch_alter_table("auth_users") as table:
        table.add_column(sa.Column("deleted_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_users") as table:
        table.drop_column("deleted_at")
    with op.batch_alter_table("auth_sessions") as table:
        table.drop_column("last_used_at")
        table.drop_column("user_agent")
