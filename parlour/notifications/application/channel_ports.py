"""What the channels' use cases and the delivery worker need from outside: storage, senders, parking."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from datetime import datetime

from parlour.notifications.domain.channels import Attempt, Delivery, DeliveryKey, PushSubscription, Webhook
from parlour.notifications.domain.delivery import ChannelKind, DeliveryState
from parlour.notifications.domain.model import Notification


class ChannelStore(ABC):
    """Users' Web Push subscriptions and webhooks."""

    @abstractmethod
    async def save_subscription(self, subscription: PushSubscription) -> tuple[PushSubscription, bool]:
        """Store `subscription`, or, when its endpoint is known already, give that row to this user with these
        keys; returns the stored subscription and whether it is new."""

    @abstractmethod
    async def subscriptions(self, user_id: str) -> list[PushSubscription]:
        """The user's subscriptions, oldest first."""

    @abstractmethod
    async def subscriptions_by_id(self, subscription_ids: Collection[str]) -> dict[str, PushSubscription]:
        """These subscriptions, whoever's, by id (one that is gone is left out)."""

    @abstractmethod
    async def remove_subscription(self, subscription_id: str, user_id: str | None = None) -> bool:
        """Delete a subscription (only the user's, when `user_id` is given); whether one was deleted."""

    @abstractmethod
    async def remove_channels_of(self, user_ids: Collection[str]) -> None:
        """Delete every subscription and webhook of these users (their accounts were deleted)."""

    @abstractmethod
    async def save_webhook(self, webhook: Webhook) -> None:
        """Store a new webhook."""

    @abstractmethod
    async def webhooks(self, user_id: str) -> list[Webhook]:
        """The user's webhooks, oldest first."""

    @abstractmethod
    async def webhooks_by_id(self, webhook_ids: Collection[str]) -> dict[str, Webhook]:
        """These webhooks, whoever's, by id (one that is gone is left out)."""

    @abstractmethod
    async def remove_webhook(self, webhook_id: str, user_id: str) -> bool:
        """Delete one of the user's webhooks; whether one was deleted."""

    @abstractmethod
    async def record_webhook_attempt(
        self, webhook_id: str, status: int | None, at: datetime, failing_since: datetime | None
    ) -> None:
        """Remember a delivery attempt's status and since when the webhook has been failing (None: it is not)."""

    @abstractmethod
    async def record_webhook_deliveries(self, delivered: Sequence[tuple[str, int, datetime]]) -> None:
        """Remember of each (webhook id, status, at) that an attempt at `at` succeeded: it is not failing."""

    @abstractmethod
    async def disable_webhook(self, webhook_id: str, reason: str) -> None:
        """Stop delivering to a webhook, saying why (the user sees the reason)."""

    @abstractmethod
    async def channels_of(self, user_ids: Collection[str]) -> dict[str, list[tuple[ChannelKind, str]]]:
        """Each user's channels that take deliveries: every subscription, the enabled webhooks."""


class DeliveryQueue(ABC):
    """The durable queue of deliveries (one row per notification and channel)."""

    @abstractmethod
    async def add(self, deliveries: Sequence[Delivery]) -> int:
        """Insert the deliveries, ignoring any whose key is there already; returns how many were new."""

    @abstractmethod
    async def take_due(self, now: datetime, limit: int, lease_until: datetime) -> list[Delivery]:
        """Up to `limit` pending or parking deliveries due at `now`, oldest due first, leased to this worker
        until `lease_until` (another worker skips them; a worker that dies lets the lease lapse)."""

    @abstractmethod
    async def next_due(self) -> datetime | None:
        """When the earliest pending or parking delivery is due, if there is one."""

    @abstractmethod
    async def finish(self, key: DeliveryKey, state: DeliveryState, attempts: int, error: str | None) -> None:
        """Set a delivery's final state (done, dropped), its attempt count and last error."""

    @abstractmethod
    async def finish_done(self, delivered: Sequence[tuple[DeliveryKey, int]]) -> None:
        """Mark each (delivery, attempt count) done, in one transaction."""

    @abstractmethod
    async def retry(self, key: DeliveryKey, attempts: int, at: datetime, error: str) -> None:
        """Make a delivery pending again at `at`, after `attempts` failed attempts."""

    @abstractmethod
    async def start_parking(self, key: DeliveryKey, attempts: int, error: str, lease_until: datetime) -> None:
        """Give a delivery up: `parking` until the parking lot has it (retaken after `lease_until` if not)."""

    @abstractmethod
    async def state_of(self, key: DeliveryKey) -> DeliveryState | None:
        """A delivery's state, or None if there is no such delivery."""

    @abstractmethod
    async def set_state(self, key: DeliveryKey, state: DeliveryState, *, only_from: DeliveryState) -> bool:
        """Move a delivery from `only_from` to `state`; whether it was in `only_from`."""

    @abstractmethod
    async def purge(self, before: datetime) -> int:
        """Delete the finished deliveries (done, dropped) created before `before`; returns how many."""

    @abstractmethod
    async def revive(self, key: DeliveryKey, at: datetime) -> bool:
        """A parked delivery pending again at `at` with no attempts counted (a replay); whether it was parked."""


class PushSender(ABC):
    """Sends one notification to one Web Push subscription (RFC 8030, VAPID, aes128gcm)."""

    @abstractmethod
    async def send(self, subscription: PushSubscription, notification: Notification) -> Attempt:
        """One attempt; never raises for what the push service or the network does."""


class WebhookSender(ABC):
    """Posts one notification, signed, to one webhook."""

    @abstractmethod
    async def send(self, webhook: Webhook, notification: Notification) -> Attempt:
        """One attempt; never raises for what the receiver or the network does."""


class Parking(ABC):
    """Where deliveries that were given up go: the bus's parking lot, with the reason."""

    @abstractmethod
    async def park(self, delivery: Delivery, attempts: int, reason: str) -> None:
        """Hand `delivery` to the parking lot (durably, before returning)."""
