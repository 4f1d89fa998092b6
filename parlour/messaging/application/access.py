"""The policy information point (PIP): who is in a chat, cached per worker.

A chat's members are cached with the chat's membership `version`. Every membership change bumps the
version in its own transaction (which locks the chat row) and publishes `MembershipChanged`, on which
every worker drops its entry. A use case that acts on a chat reads the version in its transaction and
reuses the cached members only when the versions match, so a stale entry can never authorise anyone:
a removed member is cut off as soon as the removal commits, on every worker, even before the event
arrives. Writers pass `lock=True`, which holds the chat row, so membership cannot change under them.

Within one transaction, a chat locked once stays locked, so a batch of sends to one chat (group commit)
checks its version once.

Only typing, which is relayed and never stored, trusts a cached entry without asking the database; its
staleness is bounded by the event (milliseconds) and by `ttl` seconds should an event be lost.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from weakref import WeakKeyDictionary

from parlour.common.clock import Clock
from parlour.messaging.application.ports import UnitOfWork, UnitOfWorkFactory
from parlour.messaging.domain.model import Members


class MembershipCache:
    """Chat members by chat id, validated against the chat's membership version (LRU-bounded)."""

    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock, *, ttl: float = 30.0, size: int = 10_000):
        self._uow = unit_of_work
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[str, tuple[Members, float]] = OrderedDict()
        self._locked: WeakKeyDictionary[UnitOfWork, dict[str, Members]] = WeakKeyDictionary()

    async def verified(self, uow: UnitOfWork, chat_id: str, *, lock: bool = False) -> Members | None:
        """The chat's current members as seen by `uow`'s transaction; None if there is no such chat."""
        held = self._locked.get(uow, {}).get(chat_id)
        if held is not None:
            return held
        found = await uow.chats.member_version(chat_id, lock=lock)
        if found is None:
            self._entries.pop(chat_id, None)
            return None
        kind, version, title = found
        entry = self._entries.get(chat_id)
        if entry is not None and entry[0].version == version:
            snapshot = self._retitled(entry[0], title)
        else:
            members = await uow.members.of_chat(chat_id)
            snapshot = Members.of(chat_id, kind, version, {member.user_id: member.role for member in members}, title)
            self._store(snapshot)
        if lock:
            self._locked.setdefault(uow, {})[chat_id] = snapshot
        return snapshot

    async def verify_many(self, uow: UnitOfWork, chat_ids: Sequence[str], *, lock: bool = False) -> None:
        """`verified` for many chats in a constant number of statements; with `lock`, later `verified`
        calls for them in `uow` answer from what this held, without a query."""
        held = self._locked.setdefault(uow, {}) if lock else {}
        wanted = [chat_id for chat_id in chat_ids if chat_id not in held]
        if not wanted:
            return
        versions = await uow.chats.member_versions(wanted, lock=lock)
        stale: list[str] = []
        for chat_id in wanted:
            entry = self._entries.get(chat_id)
            found = versions.get(chat_id)
            if found is None:
                self._entries.pop(chat_id, None)
            elif entry is None or entry[0].version != found[1]:
                stale.append(chat_id)
        fresh = await uow.members.of_chats(stale) if stale else {}
        for chat_id in wanted:
            found = versions.get(chat_id)
            if found is None:
                continue
            if chat_id in fresh or chat_id in stale:
                rows = fresh.get(chat_id, [])
                self._store(Members.of(chat_id, found[0], found[1], {m.user_id: m.role for m in rows}, found[2]))
            snapshot = self._retitled(self._entries[chat_id][0], found[2])
            if lock:
                held[chat_id] = snapshot

    async def cached(self, chat_id: str) -> Members | None:
        """The chat's members from the cache when fresh, else from the database (for typing only)."""
        entry = self._entries.get(chat_id)
        if entry is not None and self._clock.monotonic() < entry[1]:
            return entry[0]
        async with self._uow(write=False) as uow:
            return await self.verified(uow, chat_id)

    def invalidate(self, chat_id: str, version: int | None = None) -> None:
        """Drop the chat's entry (unless it already is at `version` or newer)."""
        entry = self._entries.get(chat_id)
        if entry is not None and (version is None or entry[0].version < version):
            del self._entries[chat_id]

    def __len__(self) -> int:
        return len(self._entries)

    def _retitled(self, snapshot: Members, title: str | None) -> Members:
        """The cached entry, renewed in LRU order, with the title just read (a rename keeps the version)."""
        if snapshot.title != title:
            snapshot = replace(snapshot, title=title)
            self._entries[snapshot.chat_id] = (snapshot, self._entries[snapshot.chat_id][1])
        self._entries.move_to_end(snapshot.chat_id)
        return snapshot

    def _store(self, members: Members) -> None:
        self._entries[members.chat_id] = (members, self._clock.monotonic() + self._ttl)
        self._entries.move_to_end(members.chat_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
