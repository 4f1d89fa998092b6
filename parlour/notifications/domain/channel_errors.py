"""The errors of the notification channels, each with a stable code (docs/errors.md). The tree::

    ParlourError (parlour.common.errors)
    ├── InvalidInput
    │   ├── TargetRefused             notification_target_refused   a URL or address notifications may not reach
    │   └── InvalidPushSubscription   invalid_push_subscription      keys that are no P-256 point / 16-byte secret
    ├── NotFound
    │   ├── PushSubscriptionNotFound  push_subscription_not_found    no such subscription of the caller's
    │   └── WebhookNotFound           webhook_not_found              no such webhook of the caller's
    └── Conflict
        └── TooManyChannels           too_many_channels              the per-user limit of subscriptions or webhooks

Another user's id is answered like an unknown one: nobody learns which ids exist.
"""

from __future__ import annotations

from parlour.common.errors import Conflict, InvalidInput, NotFound


class TargetRefused(InvalidInput):
    """A webhook URL or push endpoint that is malformed, not HTTPS, or points at a refused address."""

    code = "notification_target_refused"
    default_message = "This URL may not receive notifications: use a public https:// URL."


class InvalidPushSubscription(InvalidInput):
    """A subscription whose `p256dh` is not a P-256 public key or whose `auth` is not 16 bytes."""

    code = "invalid_push_subscription"
    default_message = "The subscription's keys are not valid: send them as the browser's PushSubscription gives them."


class PushSubscriptionNotFound(NotFound):
    code = "push_subscription_not_found"
    default_message = "No such push subscription: list yours with GET /api/notifications/push-subscriptions."


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    default_message = "No such webhook: list yours with GET /api/notifications/webhooks."


class TooManyChannels(Conflict):
    code = "too_many_channels"
    default_message = "You have as many of these as one user may have: delete one first."
