"""Building blocks of the in-memory bus: envelopes, bounded mailboxes and the binding table."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from parlour.common.bus.port import BusMessage
from parlour.common.bus.topic import is_pattern, matches
from parlour.common.errors import Unavailable


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message in a mailbox, with the number of handler attempts that already failed."""

    message: BusMessage
    attempts: int = 0


class Mailbox:
    """A bounded FIFO queue whose consumers can give messages back to its head (redelivery)."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.closed = False
        self._limit = limit
        self._items: deque[Envelope] = deque()
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, envelope: Envelope, wait_at_most: float | None) -> None:
        """Append `envelope`, waiting for room up to `wait_at_most` seconds (forever when None).

        A closed mailbox (a route whose process part is gone) takes nothing.
        """
        if len(self._items) >= self._limit:
            try:
                async with asyncio.timeout(wait_at_most):
                    while len(self._items) >= self._limit:
                        self._not_full.clear()
                        await self._not_full.wait()
            except TimeoutError:
                raise Unavailable(f"The bus queue {self.name} is full: its consumer is behind.") from None
        if not self.closed:
            self._items.append(envelope)
            self._not_empty.set()

    async def get(self) -> Envelope:
        """The oldest envelope, waiting for one if the mailbox is empty."""
        while not self._items:
            self._not_empty.clear()
            await self._not_empty.wait()
        envelope = self._items.popleft()
        self._not_full.set()
        return envelope

    def take_ready(self, count: int) -> list[Envelope]:
        """Up to `count` envelopes that are already waiting, oldest first, without waiting."""
        taken = [self._items.popleft() for _ in range(min(count, len(self._items)))]
        if taken:
            self._not_full.set()
        return taken

    def requeue(self, envelopes: Sequence[Envelope]) -> None:
        """Give `envelopes` back to the head, in order (may exceed the limit: they were in it)."""
        if envelopes and not self.closed:
            self._items.extendleft(reversed(envelopes))
            self._not_empty.set()

    def close(self) -> None:
        """Drop the contents; later puts of timers are ignored by their owners."""
        self.closed = True
        self._items.clear()
        self._not_full.set()


class RouteTable:
    """Which mailboxes are bound to which routing keys (exact keys in a dict, patterns scanned)."""

    def __init__(self) -> None:
        self._exact: dict[str, set[Mailbox]] = {}
        self._patterns: dict[str, set[Mailbox]] = {}

    def bind(self, key: str, mailbox: Mailbox) -> None:
        """Deliver events published with `key` (or matching pattern `key`) to `mailbox`."""
        table = self._patterns if is_pattern(key) else self._exact
        table.setdefault(key, set()).add(mailbox)

    def unbind(self, key: str, mailbox: Mailbox) -> None:
        """Undo `bind` (a no-op when not bound)."""
        table = self._patterns if is_pattern(key) else self._exact
        bound = table.get(key)
        if bound is not None:
            bound.discard(mailbox)
            if not bound:
                del table[key]

    def drop(self, mailbox: Mailbox) -> None:
        """Remove every binding of `mailbox`."""
        for table in (self._exact, self._patterns):
            for key in [key for key, bound in table.items() if mailbox in bound]:
                self.unbind(key, mailbox)

    def targets(self, routing_keys: Iterable[str]) -> list[Mailbox]:
        """Each mailbox bound to any of `routing_keys`, once, in a stable order."""
        found: dict[Mailbox, None] = {}
        for key in routing_keys:
            bound = self._exact.get(key)
            if bound:
                found.update(dict.fromkeys(bound))
            for pattern, matching in self._patterns.items():
                if matches(pattern, key):
                    found.update(dict.fromkeys(matching))
        return list(found)
