"""The JSON shapes of the notifications settings and mutes REST API (pydantic, at the edge only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NotificationSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    preview: bool = Field(description="Show the message (and who sent it) in your notifications.")


class NotificationSettingsOut(BaseModel):
    preview: bool


class MutesOut(BaseModel):
    chat_ids: list[str] = Field(description="The chats you muted: you are told nothing about them.")


class MuteOut(BaseModel):
    chat_id: str
    muted: bool
