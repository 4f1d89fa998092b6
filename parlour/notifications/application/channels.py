"""The channels' use cases behind the REST routes: a user's Web Push subscriptions and webhooks."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Awaitable, Callable, Collection

from cryptography.hazmat.primitives.asymmetric import ec

from parlour.common.clock import Clock
from parlour.notifications.application.channel_ports import ChannelStore
from parlour.notifications.domain.channel_errors import (
    InvalidPushSubscription,
    PushSubscriptionNotFound,
    TooManyChannels,
    WebhookNotFound,
)
from parlour.notifications.domain.channels import MAX_PUSH_SUBSCRIPTIONS, MAX_WEBHOOKS, PushSubscription, Webhook
from parlour.notifications.domain.delivery import webhook_secret

# Checks a URL against the target policy, resolving its host (`TargetRefused` if refused).
CheckTarget = Callable[[str], Awaitable[None]]


def _decoded(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidPushSubscription("The keys must be base64url, as PushSubscription.toJSON() gives them.") from None


def check_keys(p256dh: str, auth: str) -> None:
    """`InvalidPushSubscription` unless `p256dh` is a P-256 public point and `auth` a 16-byte secret."""
    if len(_decoded(auth)) != 16:
        raise InvalidPushSubscription("keys.auth must be 16 bytes, base64url.")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _decoded(p256dh))
    except ValueError:
        raise InvalidPushSubscription("keys.p256dh must be an uncompressed P-256 public key, base64url.") from None


class ChannelHandlers:
    """Subscribe, list and remove; another user's ids are answered as unknown ones."""

    def __init__(self, store: ChannelStore, check_target: CheckTarget, clock: Clock, vapid_public_key: str) -> None:
        self._store = store
        self._check_target = check_target
        self._clock = clock
        self.vapid_public_key = vapid_public_key

    async def subscribe(self, user_id: str, endpoint: str, p256dh: str, auth: str) -> tuple[PushSubscription, bool]:
        """Store a browser's subscription for `user_id` (the same endpoint again: re-owned, new keys); whether
        it is new."""
        check_keys(p256dh, auth)
        await self._check_target(endpoint)
        held = await self._store.subscriptions(user_id)
        if len(held) >= MAX_PUSH_SUBSCRIPTIONS and all(s.endpoint != endpoint for s in held):
            raise TooManyChannels(f"You have {MAX_PUSH_SUBSCRIPTIONS} push subscriptions: delete one first.")
        fresh = PushSubscription(str(uuid.uuid4()), user_id, endpoint, p256dh, auth, self._clock.utcnow())
        return await self._store.save_subscription(fresh)

    async def subscriptions(self, user_id: str) -> list[PushSubscription]:
        """The user's subscriptions."""
        return await self._store.subscriptions(user_id)

    async def unsubscribe(self, user_id: str, subscription_id: str) -> None:
        """Delete one of the user's subscriptions; `PushSubscriptionNotFound` if there is none of that id."""
        if not await self._store.remove_subscription(subscription_id, user_id):
            raise PushSubscriptionNotFound()

    async def forget_users(self, user_ids: Collection[str]) -> None:
        """Deleted accounts: nothing is sent to their browsers or webhooks any more."""
        await self._store.remove_channels_of(user_ids)

    async def add_webhook(self, user_id: str, url: str) -> Webhook:
        """A new webhook for `user_id` with a fresh secret (the only time the secret is shown)."""
        await self._check_target(url)
        if len(await self._store.webhooks(user_id)) >= MAX_WEBHOOKS:
            raise TooManyChannels(f"You have {MAX_WEBHOOKS} webhooks: delete one first.")
        secret = webhook_secret(secrets.token_bytes(24))
        webhook = Webhook(str(uuid.uuid4()), user_id, url, secret, enabled=True, created_at=self._clock.utcnow())
        await self._store.save_webhook(webhook)
        return webhook

    async def webhooks(self, user_id: str) -> list[Webhook]:
        """The user's webhooks with how their deliveries go."""
        return await self._store.webhooks(user_id)

    async def remove_webhook(self, user_id: str, webhook_id: str) -> None:
        """Delete one of the user's webhooks; `WebhookNotFound` if there is none of that id."""
        if not await self._store.remove_webhook(webhook_id, user_id):
            raise WebhookNotFound()
