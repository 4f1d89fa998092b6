"""The users' presence status as notifications last heard it, in the key-value store (Redis distributed,
in memory embedded): `notifications.presence.<user>` = `online`, `away` or `offline`.

Each entry expires after `RECORD_SECONDS` (presence's own), renewed by every change: a user not heard of
for that long is offline, as presence itself would say. Notifications' own keys: it never reads
presence's (no service reads another's state).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping

from parlour.common.kv import KeyValueStore
from parlour.notifications.application.stores import Statuses

RECORD_SECONDS = 90 * 24 * 3600.0
_KNOWN = {"online", "away", "offline"}
_AT_ONCE = 64


def _key(user_id: str) -> str:
    return f"notifications.presence.{user_id}"


class KeyValueStatuses(Statuses):
    """`Statuses` on the `KeyValueStore` port, shared by every notifications process."""

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    async def record(self, statuses: Mapping[str, str]) -> None:
        # A storm of changes (a thousand members connecting) is one flush: its writes go `_AT_ONCE` at a time.
        items = list(statuses.items())
        for start in range(0, len(items), _AT_ONCE):
            await asyncio.gather(
                *(self._kv.set(_key(u), s.encode(), RECORD_SECONDS) for u, s in items[start : start + _AT_ONCE])
            )

    async def of(self, user_ids: Collection[str]) -> dict[str, str]:
        ordered = sorted(user_ids)
        values = await self._kv.get_many([_key(user_id) for user_id in ordered])
        found: dict[str, str] = {}
        for user_id, value in zip(ordered, values, strict=True):
            status = value.decode() if value is not None else "offline"
            found[user_id] = status if status in _KNOWN else "offline"
        return found
