"""The notifications service's HTTP routes for the decision half, under `/api/notifications`: the preview
setting and the muted chats. (The channels' routes are in channels_http.py.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from parlour.common.http.security import CurrentPrincipal
from parlour.common.ids import ID_PATTERN
from parlour.notifications.adapters.schemas import MuteOut, MutesOut, NotificationSettingsIn, NotificationSettingsOut
from parlour.notifications.application.handlers import NotificationHandlers

_PROBLEM = {"content": {"application/problem+json": {}}, "description": "A problem document (RFC 9457)."}
ChatId = Annotated[str, Path(max_length=64, pattern=ID_PATTERN, description="A chat of yours.")]


def notifications_router(handlers: NotificationHandlers) -> APIRouter:
    """Routes under `/api/notifications`: the preview setting and the mutes."""
    router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses={"default": _PROBLEM})

    @router.get("/settings", summary="My notification settings")
    async def get_settings(principal: CurrentPrincipal) -> NotificationSettingsOut:
        return NotificationSettingsOut(preview=await handlers.preview(principal.user_id))

    @router.put("/settings", summary="Show or hide the message in my notifications")
    async def put_settings(principal: CurrentPrincipal, body: NotificationSettingsIn) -> NotificationSettingsOut:
        return NotificationSettingsOut(preview=await handlers.set_preview(principal.user_id, body.preview))

    @router.get("/mutes", summary="The chats I muted")
    async def get_mutes(principal: CurrentPrincipal) -> MutesOut:
        return MutesOut(chat_ids=await handlers.mutes(principal.user_id))

    @router.put(
        "/mutes/{chat_id}",
        summary="Mute a chat: no notification about it (again: no change)",
        responses={409: {**_PROBLEM, "description": "You muted as many chats as one user may (`too_many_mutes`)."}},
    )
    async def put_mute(principal: CurrentPrincipal, chat_id: ChatId) -> MuteOut:
        await handlers.mute(principal.user_id, chat_id)
        return MuteOut(chat_id=chat_id, muted=True)

    @router.delete("/mutes/{chat_id}", summary="Unmute a chat (not muted: no change)")
    async def delete_mute(principal: CurrentPrincipal, chat_id: ChatId) -> MuteOut:
        await handlers.unmute(principal.user_id, chat_id)
        return MuteOut(chat_id=chat_id, muted=False)

    return router
