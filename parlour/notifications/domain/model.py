"""What the notifications service decides and sends: one `Notification` per chat and member per window.

Pure values (no I/O): the decision rule builds them, the channels (Web Push, webhooks) turn each into
their own payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ChatKind = Literal["direct", "group"]
Urgency = Literal["normal", "high"]

# How long a push service keeps an undelivered notification (the `TTL` header): one day.
TTL_SECONDS = 24 * 3600

# How many chats one user may mute (a mute is kept whether or not the user is in the chat: see `mute`).
MAX_MUTES = 1_000


@dataclass(frozen=True, slots=True)
class Notification:
    """What one member is told about one chat: the messages they have not read since the last one.

    `id` is stable for that (chat, member, last seq): a retry or a redelivery carries the same id, which
    is the webhook's `webhook-id` and lets a receiver drop a repeat. `topic` is the same for every
    notification of the chat, so a push service replaces an unread one with the newer."""

    id: str
    user_id: str
    chat_id: str
    chat_kind: ChatKind
    title: str
    body: str
    count: int
    last_seq: int
    urgency: Urgency
    topic: str
    url: str
    created_at: datetime
    ttl_seconds: int = TTL_SECONDS
