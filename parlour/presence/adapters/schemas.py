"""The JSON shapes of the presence REST API (pydantic, at the edge only)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from parlour.presence.domain.model import Seen, Status

MAX_USER_IDS = 500
# 1 to 500 comma-separated ids, each of the id rule (parlour/common/ids.py): the OpenAPI says exactly this.
USER_IDS_PATTERN = rf"^[A-Za-z0-9_-]{{1,64}}(,[A-Za-z0-9_-]{{1,64}}){{0,{MAX_USER_IDS - 1}}}$"
USER_IDS_MAX_LENGTH = MAX_USER_IDS * 65 - 1


class UserPresenceOut(BaseModel):
    user_id: str
    status: Status
    last_seen: datetime | None = Field(description="When they were last online; only while offline and not hidden.")

    @classmethod
    def of(cls, user_id: str, seen: Seen) -> UserPresenceOut:
        last_seen = None if seen.last_seen is None else datetime.fromtimestamp(seen.last_seen, UTC)
        return cls(user_id=user_id, status=seen.status, last_seen=last_seen)


class PresenceOut(BaseModel):
    users: list[UserPresenceOut]


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    hidden: bool = Field(description="Hide your presence: others see you offline, with no last seen.")


class SettingsOut(BaseModel):
    hidden: bool
