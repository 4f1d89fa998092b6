"""What the gateway's use cases need from the outside world (the bus, through small adapters)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from parlour.gateway.domain.session import Command, Session


class CommandSink(ABC):
    """Hands client commands to messaging."""

    @abstractmethod
    async def send(self, command: Command, session: Session) -> None:
        """Enqueue `command` stamped with `session`'s user and id, durably; raises `Unavailable` if it cannot."""


class SessionEvents(ABC):
    """Tells the other services (presence) that sessions open and close."""

    @abstractmethod
    async def opened(self, session: Session) -> None:
        """`session` is live on this gateway."""

    @abstractmethod
    async def closed(self, session: Session) -> None:
        """`session` is gone from this gateway."""
