"""auth: avatars

Revision ID: auth_0003
Revises: auth_0002
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0003"
down_revision: str | None = "auth_0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # In the database, as everything else of auth's: both modes have one, and a picture is small once
    # re-encoded (at most 256 x 256 WebP, a few tens of KB).
    op.create_table(
        "auth_avatars",
        sa.Column("user_id", sa.String(36), sa.ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(32), nullable=False),
    )
    with op.batch_alter_table("auth_users") as table:
        table.add_column(sa.Column("avatar_etag", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_users") as table:
        table.drop_column("avatar_etag")
    op.drop_table("auth_avatars")
