"""The notifications service's decision tables (SQLAlchemy Core). ./migrations creates them.

- `notifications_preferences (user_id)`: the body preview setting, one row per user who ever chose
  (none: preview on).
- `notifications_mutes (user_id, chat_id)`: the chats a member muted.
- `notifications_reads (chat_id, user_id)`: the read cursor of every member of every chat, fed by
  messaging's `read.moved` and `chat.members_changed` (a row is a membership: a member removed loses it).
  `(user_id, chat_id)` serves "is this user a member" for the mute routes.
- `notifications_chats (id)`: the membership version the rows of each chat are at (an older event is
  ignored), as presence keeps it.
- `notifications_users (id)`: display names, fed by auth's `user.registered`.
- `notifications_pending (chat_id, user_id)`: what a member has not been told yet about a chat, and when
  they were last told; `due_at` set = waiting (docs/subsystems/notifications.md, "State"). Times are Unix
  seconds (floats): the rule compares and adds them, the same in SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
    true,
)

metadata = MetaData()

preferences = Table(
    "notifications_preferences",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("preview", Boolean(), nullable=False, server_default=true()),
)

mutes = Table(
    "notifications_mutes",
    metadata,
    Column("user_id", String(36), nullable=False),
    Column("chat_id", String(36), nullable=False),
    PrimaryKeyConstraint("user_id", "chat_id", name="pk_notifications_mutes"),
)

reads = Table(
    "notifications_reads",
    metadata,
    Column("chat_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("seq", BigInteger(), nullable=False, server_default="0"),
    PrimaryKeyConstraint("chat_id", "user_id", name="pk_notifications_reads"),
    Index("ix_notifications_reads_user_chat", "user_id", "chat_id"),
)

chats = Table(
    "notifications_chats",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("version", BigInteger(), nullable=False),
)

users = Table(
    "notifications_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("display_name", String(64), nullable=False),
)

pending = Table(
    "notifications_pending",
    metadata,
    Column("chat_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("first_seq", BigInteger(), nullable=False, server_default="0"),
    Column("last_seq", BigInteger(), nullable=False, server_default="0"),
    Column("count", Integer(), nullable=False, server_default="0"),
    Column("sender_ids", Text(), nullable=False, server_default=""),
    Column("chat_kind", String(16), nullable=False, server_default="group"),
    Column("chat_title", String(128), nullable=True),
    Column("preview", Text(), nullable=False, server_default=""),
    Column("mentioned", Boolean(), nullable=False, server_default=false()),
    Column("due_at", Float(), nullable=True),
    Column("last_sent_at", Float(), nullable=True),
    PrimaryKeyConstraint("chat_id", "user_id", name="pk_notifications_pending"),
    Index("ix_notifications_pending_due_at", "due_at"),
)
