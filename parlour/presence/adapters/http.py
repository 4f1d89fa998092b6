"""The presence service's HTTP routes under `/api/presence`: translation between JSON and the use cases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from parlour.common.http.security import CurrentPrincipal
from parlour.presence.adapters.schemas import (
    USER_IDS_MAX_LENGTH,
    USER_IDS_PATTERN,
    PresenceOut,
    SettingsIn,
    SettingsOut,
    UserPresenceOut,
)
from parlour.presence.application.handlers import PresenceHandlers

_PROBLEM = {"content": {"application/problem+json": {}}, "description": "A problem document (RFC 9457)."}
UserIds = Annotated[
    str,
    Query(
        min_length=1,
        max_length=USER_IDS_MAX_LENGTH,
        pattern=USER_IDS_PATTERN,
        description="1 to 500 comma-separated user ids: yourself, or users who share a chat with you.",
    ),
]


def presence_router(handlers: PresenceHandlers) -> APIRouter:
    """Routes under `/api/presence`: look-ups and the privacy setting."""
    router = APIRouter(prefix="/api/presence", tags=["presence"], responses={"default": _PROBLEM})

    @router.get(
        "",
        summary="The presence of users who share a chat with me, in the order asked",
        responses={404: {**_PROBLEM, "description": "An id that is neither you nor a contact (or no user)."}},
    )
    async def look_up(principal: CurrentPrincipal, user_ids: UserIds) -> PresenceOut:
        found = await handlers.look_up(principal.user_id, user_ids.split(","))
        return PresenceOut(users=[UserPresenceOut.of(user_id, seen) for user_id, seen in found])

    @router.get("/settings", summary="My presence setting")
    async def get_settings(principal: CurrentPrincipal) -> SettingsOut:
        return SettingsOut(hidden=await handlers.hidden(principal.user_id))

    @router.put("/settings", summary="Hide or show my presence (takes effect for others at once)")
    async def put_settings(principal: CurrentPrincipal, body: SettingsIn) -> SettingsOut:
        return SettingsOut(hidden=await handlers.set_hidden(principal.user_id, body.hidden))

    return router
