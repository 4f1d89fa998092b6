"""Auth events on the bus: other services learn of users from these."""

from __future__ import annotations

import msgspec

from parlour.auth.application.ports import UserEvents
from parlour.auth.domain.model import User
from parlour.common.bus import BusMessage, MessageBus
from parlour.common.contracts import (
    USER_DELETED,
    USER_DELETED_KEY,
    USER_REGISTERED,
    USER_REGISTERED_KEY,
    USER_RENAMED,
    USER_RENAMED_KEY,
    UserDeleted,
    UserRegistered,
    UserRenamed,
)


class BusUserEvents(UserEvents):
    """Publishes `user.registered`, `user.renamed` and `user.deleted` with routing keys `auth.user.<type>`."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def registered(self, user: User) -> None:
        event = UserRegistered(user_id=user.id, username=user.username, display_name=user.display_name)
        await self._bus.publish(
            [USER_REGISTERED_KEY], BusMessage(type=USER_REGISTERED, body=msgspec.json.encode(event))
        )

    async def renamed(self, user: User) -> None:
        event = UserRenamed(user_id=user.id, display_name=user.display_name)
        await self._bus.publish([USER_RENAMED_KEY], BusMessage(type=USER_RENAMED, body=msgspec.json.encode(event)))

    async def deleted(self, user: User) -> None:
        event = UserDeleted(user_id=user.id, display_name=user.display_name)
        await self._bus.publish([USER_DELETED_KEY], BusMessage(type=USER_DELETED, body=msgspec.json.encode(event)))
