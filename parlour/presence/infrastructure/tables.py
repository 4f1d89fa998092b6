"""The presence service's tables (SQLAlchemy Core). The migrations in ./migrations create them.

- `presence_members (chat_id, user_id)`: presence's own projection of who is in which chat, fed by
  messaging's `chat.members_changed`; the primary key serves a chat's members, `(user_id, chat_id)` a
  user's chats (contacts: the members of the user's chats).
- `presence_chats (id)`: the membership version each chat's rows are at, so an older event is ignored.
- `presence_settings (user_id)`: the privacy setting.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, MetaData, PrimaryKeyConstraint, String, Table

metadata = MetaData()

chats = Table(
    "presence_chats",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("version", BigInteger(), nullable=False),
)

members = Table(
    "presence_members",
    metadata,
    Column("chat_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    PrimaryKeyConstraint("chat_id", "user_id", name="pk_presence_members"),
    Index("ix_presence_members_user_chat", "user_id", "chat_id"),
)

settings = Table(
    "presence_settings",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("hidden", Boolean(), nullable=False),
)
