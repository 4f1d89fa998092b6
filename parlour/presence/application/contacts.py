"""Who shares a chat with whom, read through a short-lived cache of each chat's members.

A storm of a group's members connecting asks for that group's members once per second, not once per
connection. This process forgets a chat's cached members as soon as it applies a change to them; a change
applied by another presence process is seen at most `ttl` seconds late (docs/subsystems/presence.md,
"Races"). A user's chats are never cached (one small read per question). Look-ups over REST
(`among`, the authorization of `GET /api/presence`) always read the projection itself.
"""

from __future__ import annotations

from collections.abc import Collection

from parlour.common.clock import Clock
from parlour.presence.application.ports import Contacts

# Chats whose members are kept at most; past it the oldest entry goes first.
CACHED_CHATS = 10_000


class MembershipView:
    """The contacts of users, and the memberships a flush plans with, on the `Contacts` projection."""

    def __init__(self, contacts: Contacts, clock: Clock, *, ttl: float = 1.0, capacity: int = CACHED_CHATS) -> None:
        self._contacts = contacts
        self._clock = clock
        self._ttl = ttl
        self._capacity = capacity
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def apply(self, chat_id: str, version: int, member_ids: Collection[str]) -> set[str] | None:
        """`Contacts.apply`, forgetting the chat's cached members."""
        self._members.pop(chat_id, None)
        added = await self._contacts.apply(chat_id, version, member_ids)
        self._members.pop(chat_id, None)
        return added

    async def among(self, user_id: str, candidates: Collection[str]) -> set[str]:
        """The candidates who share a chat with the user, read from the projection (never cached)."""
        return await self._contacts.among(user_id, candidates)

    async def of(self, user_id: str) -> set[str]:
        """Everyone who shares at least one chat with the user, the user excluded."""
        chats = (await self._contacts.chats_of([user_id])).get(user_id, set())
        members = await self.members_of(chats)
        return {member for chat in chats for member in members.get(chat, ())} - {user_id}

    async def memberships(self, user_ids: Collection[str]) -> tuple[dict[str, set[str]], dict[str, frozenset[str]]]:
        """(the chats of each user, the members of each of those chats): what `plan` needs."""
        chats_of = await self._contacts.chats_of(user_ids)
        return chats_of, await self.members_of({chat for chats in chats_of.values() for chat in chats})

    async def members_of(self, chat_ids: Collection[str]) -> dict[str, frozenset[str]]:
        """The members of each chat, from the cache where it is fresh."""
        now = self._clock.monotonic()
        found: dict[str, frozenset[str]] = {}
        missing: list[str] = []
        for chat_id in chat_ids:
            cached = self._members.get(chat_id)
            if cached is not None and cached[0] > now:
                found[chat_id] = cached[1]
            else:
                missing.append(chat_id)
        if missing:
            read = await self._contacts.members_of(missing)
            for chat_id in missing:
                members = found[chat_id] = frozenset(read.get(chat_id, ()))
                self._remember(chat_id, members, now)
        return found

    def _remember(self, chat_id: str, members: frozenset[str], now: float) -> None:
        self._members.pop(chat_id, None)
        while len(self._members) >= self._capacity:
            del self._members[next(iter(self._members))]
        self._members[chat_id] = (now + self._ttl, members)
