"""The messaging service's tables (SQLAlchemy Core). The migrations in ./migrations create them.

Indexes and what uses them:
- `messaging_messages (chat_id, seq)` unique: history pages, sync, the last message of a chat; and the
  guarantee that a seq is never given twice.
- `messaging_messages (sender_id, client_id)` unique: idempotent sends.
- `messaging_members (user_id)`: a user's chats (the chat list, sync); the primary key
  `(chat_id, user_id)` serves a chat's members.
- `messaging_chats (direct_key)` unique: exactly one direct chat per pair of users.
- `messaging_reactions (message_id, user_id, emoji)` primary key: a message's reactions (a page of history
  reads them with one `message_id IN (...)`), and each user's emoji at most once per message.
- `messaging_outbox (writer, id)`: a relay's own entries when it catches up; orphans are found by writer
  too, and the table holds only what is not yet published (a few entries).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from parlour.common.db import UtcDateTime

metadata = MetaData()

users = Table(
    "messaging_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(32), nullable=False),
    Column("display_name", String(64), nullable=False),
)

chats = Table(
    "messaging_chats",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("title", String(128), nullable=True),
    Column("direct_key", String(80), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_activity_at", UtcDateTime(), nullable=False),
    Column("last_seq", BigInteger(), nullable=False, server_default="0"),
    Column("member_version", BigInteger(), nullable=False, server_default="0"),
    UniqueConstraint("direct_key", name="uq_messaging_chats_direct_key"),
)

members = Table(
    "messaging_members",
    metadata,
    Column("chat_id", String(36), ForeignKey("messaging_chats.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("role", String(16), nullable=False),
    Column("read_seq", BigInteger(), nullable=False, server_default="0"),
    Column("joined_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("chat_id", "user_id", name="pk_messaging_members"),
    Index("ix_messaging_members_user_id", "user_id"),
)

messages = Table(
    "messaging_messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("chat_id", String(36), ForeignKey("messaging_chats.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger(), nullable=False),
    Column("sender_id", String(36), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("body", Text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("edited_at", UtcDateTime(), nullable=True),
    Column("deleted_at", UtcDateTime(), nullable=True),
    Column("deleted_by", String(36), nullable=True),
    # The id of the message of the same chat this one replies to (no foreign key: messages are never
    # removed, a deletion leaves a tombstone, and SQLite cannot add one to an existing table).
    Column("reply_to", String(36), nullable=True),
    UniqueConstraint("chat_id", "seq", name="uq_messaging_messages_chat_seq"),
    UniqueConstraint("sender_id", "client_id", name="uq_messaging_messages_sender_client"),
)

reactions = Table(
    "messaging_reactions",
    metadata,
    Column("message_id", String(36), ForeignKey("messaging_messages.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("emoji", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("message_id", "user_id", "emoji", name="pk_messaging_reactions"),
)

outbox = Table(
    "messaging_outbox",
    metadata,
    # BigInteger on PostgreSQL, INTEGER (the rowid) on SQLite: ids only grow on both.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("writer", String(64), nullable=False),
    Column("payload", LargeBinary(), nullable=False),
    Index("ix_messaging_outbox_writer", "writer", "id"),
    sqlite_autoincrement=True,  # never reuse the id of a removed last entry
)
