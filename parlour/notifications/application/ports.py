"""What the notifications use cases need from outside."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from parlour.notifications.domain.model import Notification


class Dispatcher(ABC):
    """Hands due notifications to the user's channels (Web Push subscriptions, webhooks)."""

    @abstractmethod
    async def dispatch(self, notifications: Sequence[Notification]) -> None:
        """Record one delivery per channel of each notification's user, durably, before returning.

        Idempotent by notification id and channel: dispatching a notification again (a redelivery after
        a crash) records nothing new. The deliveries themselves (attempts, retries, parking) happen
        afterwards, on their own schedule: this never waits on a push service or a webhook."""
