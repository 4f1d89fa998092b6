"""The auth service's tables (SQLAlchemy Core). The migrations in ./migrations create them."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, LargeBinary, MetaData, String, Table

from parlour.auth.domain.model import USER_AGENT_MAX_LENGTH
from parlour.common.db import UtcDateTime

metadata = MetaData()

users = Table(
    "auth_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(32), nullable=False, unique=True),
    Column("display_name", String(64), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("deleted_at", UtcDateTime(), nullable=True),
    Column("avatar_etag", String(32), nullable=True),
)

avatars = Table(
    "auth_avatars",
    metadata,
    Column("user_id", String(36), ForeignKey("auth_users.id", ondelete="CASCADE"), primary_key=True),
    Column("image", LargeBinary(), nullable=False),
    Column("etag", String(32), nullable=False),
)

sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("auth_users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revoked_reason", String(32), nullable=True),
    Column("user_agent", String(USER_AGENT_MAX_LENGTH), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Index("ix_auth_sessions_user_id", "user_id"),
)

refresh_tokens = Table(
    "auth_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("session_id", String(36), ForeignKey("auth_sessions.id", ondelete="CASCADE"), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
    Index("ix_auth_refresh_tokens_session_id", "session_id"),
)
