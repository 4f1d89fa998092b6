"""What the gateway's use cases need from the outside world (the bus, through small adapters)."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence

from parlour.gateway.domain.session import Command, Session


class CommandSink(ABC):
    """Hands client commands to messaging."""

    @abstractmethod
    def partition_of(self, partition_key: str) -> int:
        """The partition that carries commands for `partition_key`: commands of one go together."""

    @abstractmethod
    async def send(self, commands: Sequence[tuple[Command, Session]]) -> None:
        """Enqueue commands of one destination and partition, in order, each stamped with its session's user
        and id, as one durable bus message; raises `Unavailable` if it cannot."""


class SessionEvents(ABC):
    """Tells the other services (presence) that sessions open and close, in the order they do.

    Each event is queued at once, behind the ones before it; the future it returns says, once the event
    left or could not, whether it is on the bus. It never raises: a lost event is logged, and presence
    is told again by the session's next one, so it must not break a connection."""

    @abstractmethod
    def opened(self, session: Session) -> asyncio.Future[bool]:
        """`session` is live on this gateway."""

    @abstractmethod
    def closed(self, session: Session) -> asyncio.Future[bool]:
        """`session` is gone from this gateway."""
