"""The unit-of-work port every service's use cases share: one transaction, rolled back unless committed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class UnitOfWork(ABC):
    """A transaction over a service's repositories; services subclass it to name their repositories."""

    @abstractmethod
    async def __aenter__(self) -> Self:
        """Begin the transaction."""

    @abstractmethod
    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """End it: whatever was not committed is rolled back."""

    @abstractmethod
    async def commit(self) -> None:
        """Make the work durable."""
