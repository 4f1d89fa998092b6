"""The channels' HTTP routes under `/api/notifications`: the VAPID key, push subscriptions, webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from parlour.common.http.security import CurrentPrincipal
from parlour.common.ids import ID_PATTERN
from parlour.notifications.application.channels import ChannelHandlers
from parlour.notifications.domain.channels import PushSubscription, Webhook

_PROBLEM: dict[str, Any] = {
    "content": {"application/problem+json": {}},
    "description": "A problem document (RFC 9457).",
}
# base64url of a 65-byte P-256 point is 87 characters (88 padded); of a 16-byte secret, 22 (24 padded).
_B64URL = r"^[A-Za-z0-9_-]+={0,2}$"
ChannelId = Annotated[str, Path(pattern=ID_PATTERN, max_length=64, description="The id the list gave.")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KeysIn(_In):
    p256dh: str = Field(min_length=86, max_length=88, pattern=_B64URL, description="The browser's P-256 key.")
    auth: str = Field(min_length=22, max_length=24, pattern=_B64URL, description="The 16-byte auth secret.")


class PushSubscriptionIn(_In):
    endpoint: str = Field(min_length=8, max_length=2048, description="The push service URL the browser gave.")
    keys: KeysIn
    # What PushSubscription.toJSON() adds and Parlour does not use.
    expirationTime: int | None = Field(default=None, description="Ignored.")


class PushSubscriptionOut(BaseModel):
    id: str
    endpoint: str
    created_at: datetime

    @classmethod
    def of(cls, subscription: PushSubscription) -> PushSubscriptionOut:
        return cls(id=subscription.id, endpoint=subscription.endpoint, created_at=subscription.created_at)


class PushSubscriptionsOut(BaseModel):
    subscriptions: list[PushSubscriptionOut]


class WebhookIn(_In):
    url: str = Field(min_length=8, max_length=2048, description="An https:// URL that takes POSTed JSON.")


class WebhookOut(BaseModel):
    id: str
    url: str
    enabled: bool
    disabled_reason: str | None = Field(description="Why deliveries stopped, when they did.")
    last_status: int | None = Field(description="The HTTP status of the last delivery attempt (null: no answer).")
    last_attempt_at: datetime | None
    failing_since: datetime | None = Field(description="Since when every attempt failed, while they do.")
    created_at: datetime

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookOut:
        return cls(
            id=webhook.id,
            url=webhook.url,
            enabled=webhook.enabled,
            disabled_reason=webhook.disabled_reason,
            last_status=webhook.last_status,
            last_attempt_at=webhook.last_attempt_at,
            failing_since=webhook.failing_since,
            created_at=webhook.created_at,
        )


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="The signing secret (`whsec_…`): shown this once, keep it.")


class WebhooksOut(BaseModel):
    webhooks: list[WebhookOut]


class VapidKeyOut(BaseModel):
    public_key: str = Field(description="The applicationServerKey for PushManager.subscribe (base64url).")


def channels_router(handlers: ChannelHandlers) -> APIRouter:
    """Routes under `/api/notifications` for the channels."""
    router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses={"default": _PROBLEM})
    not_found: dict[int | str, dict[str, Any]] = {404: {**_PROBLEM, "description": "No such id among yours."}}

    @router.get("/vapid-key", summary="The public key to subscribe browsers with (VAPID)")
    async def vapid_key() -> VapidKeyOut:
        return VapidKeyOut(public_key=handlers.vapid_public_key)

    @router.post(
        "/push-subscriptions",
        status_code=status.HTTP_201_CREATED,
        summary="Add this browser's push subscription (the same endpoint again: 200, now yours)",
        responses={200: {"description": "The endpoint was known: it is now yours, with these keys."}},
    )
    async def subscribe(
        principal: CurrentPrincipal, body: PushSubscriptionIn, response: Response
    ) -> PushSubscriptionOut:
        stored, created = await handlers.subscribe(principal.user_id, body.endpoint, body.keys.p256dh, body.keys.auth)
        if not created:
            response.status_code = status.HTTP_200_OK
        return PushSubscriptionOut.of(stored)

    @router.get("/push-subscriptions", summary="My push subscriptions")
    async def subscriptions(principal: CurrentPrincipal) -> PushSubscriptionsOut:
        found = await handlers.subscriptions(principal.user_id)
        return PushSubscriptionsOut(subscriptions=[PushSubscriptionOut.of(s) for s in found])

    @router.delete(
        "/push-subscriptions/{subscription_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Remove a push subscription",
        responses=not_found,
    )
    async def unsubscribe(principal: CurrentPrincipal, subscription_id: ChannelId) -> None:
        await handlers.unsubscribe(principal.user_id, subscription_id)

    @router.post("/webhooks", status_code=status.HTTP_201_CREATED, summary="Add a webhook (its secret is shown once)")
    async def add_webhook(principal: CurrentPrincipal, body: WebhookIn) -> NewWebhookOut:
        webhook = await handlers.add_webhook(principal.user_id, body.url)
        return NewWebhookOut(**WebhookOut.of(webhook).model_dump(), secret=webhook.secret)

    @router.get("/webhooks", summary="My webhooks, with their last delivery status")
    async def webhooks(principal: CurrentPrincipal) -> WebhooksOut:
        return WebhooksOut(webhooks=[WebhookOut.of(w) for w in await handlers.webhooks(principal.user_id)])

    @router.delete(
        "/webhooks/{webhook_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Remove a webhook",
        responses=not_found,
    )
    async def remove_webhook(principal: CurrentPrincipal, webhook_id: ChannelId) -> None:
        await handlers.remove_webhook(principal.user_id, webhook_id)

    return router
