"""Auth events on the bus: other services learn of users from these."""

from __future__ import annotations

import msgspec

from parlour.auth.application.ports import UserEvents
from parlour.auth.domain.model import User
from parlour.common.bus import BusMessage, MessageBus

USER_REGISTERED = "user.registered"
USER_EVENTS_KEY = "auth.user.registered"


class UserRegistered(msgspec.Struct, frozen=True):
    user_id: str
    username: str
    display_name: str


class BusUserEvents(UserEvents):
    """Publishes `user.registered` with routing key `auth.user.registered`."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    async def registered(self, user: User) -> None:
        body = msgspec.json.encode(UserRegistered(user.id, user.username, user.display_name))
        await self._bus.publish([USER_EVENTS_KEY], BusMessage(type=USER_REGISTERED, body=body))
