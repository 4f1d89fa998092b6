"""messaging: the transactional outbox

Revision ID: messaging_0002
Revises: messaging_0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "messaging_0002"
down_revision: str | None = "messaging_0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messaging_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("writer", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_messaging_outbox_writer", "messaging_outbox", ["writer", "id"])


def downgrade() -> None:
    op.drop_index("ix_messaging_outbox_writer", table_name="messaging_outbox")
    op.drop_table("messaging_outbox")
