"""Webhooks signed the Standard Webhooks way, and the parking lot on the bus.

A delivery is a POST of JSON with `webhook-id` (the notification's id: the same on every retry, so a
receiver can drop a repeat), `webhook-timestamp` (seconds) and `webhook-signature` (`v1,` + base64
HMAC-SHA256 over `id.timestamp.body` with the endpoint's `whsec_` secret).

Parking: a delivery given up is published as `notifications.delivery_parked` to the service's own queue
`notifications.parked`; its consumer (`ParkedDeliveries`) refuses it as final, so the bus parks it with
the reason (`parlour dlq list` shows it) and `parlour dlq replay` brings it back, which makes the delivery
pending again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from parlour.common.bus import BusMessage, MessageBus, Subscription
from parlour.common.bus.port import MalformedMessage
from parlour.common.clock import Clock
from parlour.notifications.adapters.outbound import Outbound
from parlour.notifications.application.channel_ports import Parking, WebhookSender
from parlour.notifications.application.delivery import ParkedDeliveries
from parlour.notifications.domain.channels import Attempt, Delivery, DeliveryKey, Webhook
from parlour.notifications.domain.delivery import ChannelKind, sign_webhook
from parlour.notifications.domain.model import Notification

PARKED_TYPE = "notifications.delivery_parked"
PARKED_KEY = "notifications.delivery_parked"
PARKED_QUEUE = "notifications.parked"
EVENT_TYPE = "notification"


def webhook_body(notification: Notification, sent_at: datetime) -> bytes:
    """The JSON a webhook receives (`type`, `timestamp`, `data`: the notification)."""
    data = {
        "id": notification.id,
        "user_id": notification.user_id,
        "chat_id": notification.chat_id,
        "chat_kind": notification.chat_kind,
        "title": notification.title,
        "body": notification.body,
        "count": notification.count,
        "last_seq": notification.last_seq,
        "urgency": notification.urgency,
        "url": notification.url,
    }
    return msgspec.json.encode({"type": EVENT_TYPE, "timestamp": sent_at.isoformat(), "data": data})


class SignedWebhookSender(WebhookSender):
    """Signs with the webhook's secret and posts through `Outbound`."""

    def __init__(self, outbound: Outbound, clock: Clock) -> None:
        self._outbound = outbound
        self._clock = clock

    async def send(self, webhook: Webhook, notification: Notification) -> Attempt:
        timestamp = int(self._clock.now())
        body = webhook_body(notification, datetime.fromtimestamp(timestamp, UTC))
        headers = {
            "webhook-id": notification.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(webhook.secret, notification.id, timestamp, body),
            "Content-Type": "application/json",
            "User-Agent": "Parlour-Webhooks/1",
        }
        return await self._outbound.post(webhook.url, body, headers)


class _Parked(msgspec.Struct, frozen=True):
    notification_id: str
    kind: str
    channel_id: str
    user_id: str
    attempts: int
    reason: str


class BusParking(Parking):
    """Publishes given-up deliveries for the parking lot's consumer."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def park(self, delivery: Delivery, attempts: int, reason: str) -> None:
        key = delivery.key
        body = _Parked(key.notification_id, key.kind.value, key.channel_id, delivery.user_id, attempts, reason)
        # One message id per parking: a republish after a crash is the same message.
        message_id = f"{key.notification_id}|{key.kind.value}|{key.channel_id}|{attempts}"
        await self._bus.publish([PARKED_KEY], BusMessage(PARKED_TYPE, msgspec.json.encode(body), message_id))


class ParkingConsumer:
    """The bus handler of `notifications.parked`: decodes, then lets `ParkedDeliveries` decide."""

    def __init__(self, parked: ParkedDeliveries) -> None:
        self._parked = parked

    async def __call__(self, messages: Sequence[BusMessage]) -> None:
        for message in messages:
            if message.type != PARKED_TYPE:
                raise MalformedMessage(f"not a parked delivery: {message.type!r}")
            parked = msgspec.json.decode(message.body, type=_Parked)
            key = DeliveryKey(parked.notification_id, ChannelKind(parked.kind), parked.channel_id)
            await self._parked.arrived(key, parked.reason)


async def subscribe_parking(bus: MessageBus, parked: ParkedDeliveries) -> Subscription:
    """Consume the parking lot's queue (one message at a time: each one may be refused on its own)."""
    return await bus.subscribe(PARKED_QUEUE, [PARKED_KEY], ParkingConsumer(parked), max_batch=1)
