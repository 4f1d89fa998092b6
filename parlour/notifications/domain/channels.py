"""A user's channels and the deliveries to them, as the delivery rules see them (pure values)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from parlour.notifications.domain.delivery import ChannelKind, DeliveryState

# How many channels of each kind one user may have.
MAX_PUSH_SUBSCRIPTIONS = 20
MAX_WEBHOOKS = 10


@dataclass(frozen=True, slots=True)
class PushSubscription:
    """A browser's Web Push subscription: where to post, and the keys to encrypt for (RFC 8291)."""

    id: str
    user_id: str
    endpoint: str
    p256dh: str  # the browser's P-256 public key, base64url
    auth: str  # the 16-byte authentication secret, base64url
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Webhook:
    """A user's webhook endpoint, its signing secret, and how its deliveries have been going."""

    id: str
    user_id: str
    url: str
    secret: str
    enabled: bool
    created_at: datetime
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    last_status: int | None = None
    last_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryKey:
    """Which delivery: a notification to one channel."""

    notification_id: str
    kind: ChannelKind
    channel_id: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification to one channel, as the delivery queue holds it."""

    key: DeliveryKey
    user_id: str
    payload: bytes  # the notification, encoded (parlour.notifications.application.delivery.encode)
    attempts: int
    next_attempt_at: datetime
    state: DeliveryState
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt got: an HTTP status (None: no answer), the `Retry-After` it asked for in seconds,
    and a short description of what went wrong; `refused` when the target policy refused the address."""

    status: int | None
    retry_after: float | None = None
    error: str | None = None
    refused: bool = False

    def describe(self) -> str:
        """A short text of the attempt for logs, `last_error` and a parked message's reason."""
        if self.status is None or self.error:
            return self.error or "no answer"
        return f"HTTP {self.status}"
