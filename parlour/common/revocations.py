"""Revoked auth sessions, shared by every process through the key-value store.

An access token is verified locally (signature and claims), so logging out alone would leave it usable
until it expires. The auth service therefore writes each revoked session id here (on logout, logout
everywhere and refresh-token reuse), for as long as an access token of it can still be valid: the
access-token lifetime plus the clock leeway. After that the tokens expire on their own and the entry goes.

Two shapes of the same fact: a key per session, for the O(1) check of every REST request and every pass
redemption; and one set of recent revocations, which each gateway reads once a second to close the sockets
of revoked sessions.

The store may lose them (Redis restarted without persistence, an embedded process restarted): a marker
key says the entries are all there. When it is missing, auth writes every session its
database revoked within the entries' lifetime again (`AuthHandlers.restore_revocations`), then the marker.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable

from parlour.common.kv import KeyValueStore
from parlour.common.settings import Settings

RECENT_KEY = "auth.revoked"
_SESSION_PREFIX = "auth.revoked:"
INTACT_KEY = "auth.revoked.intact"  # present: every revocation of the lifetime is in the store


class Revocations:
    """Marks auth sessions revoked and answers whether one is."""

    def __init__(self, kv: KeyValueStore, ttl_seconds: float) -> None:
        self._kv = kv
        self._ttl = ttl_seconds

    @classmethod
    def of(cls, kv: KeyValueStore, settings: Settings) -> Revocations:
        """Entries that outlive every access token a revoked session may still hold."""
        return cls(kv, settings.access_token_ttl_seconds + settings.token_leeway_seconds)

    @property
    def ttl_seconds(self) -> float:
        """How long an entry must stay: the longest an access token of a revoked session may still be valid."""
        return self._ttl

    async def revoke(self, session_ids: Iterable[str], ttl: float | None = None) -> None:
        """Record `session_ids` as revoked, for every process of the deployment (for `ttl` s, when
        restoring an older revocation, else the full lifetime)."""
        ttl = self._ttl if ttl is None else ttl
        for session_id in session_ids:
            await self._kv.set(_SESSION_PREFIX + session_id, b"1", ttl=ttl)
            await self._kv.add_member(RECENT_KEY, session_id, ttl)

    async def intact(self) -> bool:
        """Whether the store still holds every revocation (its marker is there)."""
        return await self._kv.get(INTACT_KEY) is not None

    async def mark_intact(self) -> None:
        """The marker expires like the entries (nothing of a deployment stays in the store for good): when
        it does, the next check restores again, which rewrites what is there already."""
        await self._kv.set(INTACT_KEY, b"1", ttl=self._ttl)

    async def is_revoked(self, session_id: str) -> bool:
        """Whether `session_id` was revoked while its access tokens may still be valid."""
        return await self._kv.get(_SESSION_PREFIX + session_id) is not None

    async def recent(self) -> builtins.set[str]:
        """Every session revoked within the last access-token lifetime."""
        return await self._kv.members(RECENT_KEY)
