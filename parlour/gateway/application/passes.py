"""One-time passes: issued over HTTP to an authenticated user, redeemed once by the WebSocket handshake."""

from __future__ import annotations

from dataclasses import dataclass

from parlour.common.kv import KeyValueStore
from parlour.common.ratelimit import RateLimiter
from parlour.gateway.domain.errors import PassRejected, TooManyPasses
from parlour.gateway.domain.passes import PassHolder, new_pass, pass_key, plausible


@dataclass(frozen=True, slots=True)
class IssuePass:
    user_id: str
    auth_session_id: str


@dataclass(frozen=True, slots=True)
class IssuedPass:
    secret: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class PassPolicy:
    ttl_seconds: int
    issue_limit: int  # passes per user per window
    issue_window_seconds: float


class PassBook:
    """Issues and redeems passes in the key-value store (hashed, with a TTL, taken atomically)."""

    def __init__(self, kv: KeyValueStore, limiter: RateLimiter, policy: PassPolicy) -> None:
        self._kv = kv
        self._limiter = limiter
        self._policy = policy

    async def issue(self, command: IssuePass) -> IssuedPass:
        """A new pass for `command.user_id`; raises `TooManyPasses` past the per-user limit."""
        policy = self._policy
        await self._limiter.hit(
            command.user_id, limit=policy.issue_limit, window=policy.issue_window_seconds, error=TooManyPasses
        )
        secret = new_pass()
        holder = f"{command.user_id}\n{command.auth_session_id}".encode()
        await self._kv.set(pass_key(secret), holder, ttl=policy.ttl_seconds)
        return IssuedPass(secret, policy.ttl_seconds)

    async def redeem(self, secret: str | None) -> PassHolder:
        """Who the pass speaks for, consuming it; raises `PassRejected` if missing, unknown, expired or used."""
        if secret is None or not plausible(secret):
            raise PassRejected()
        stored = await self._kv.take(pass_key(secret))
        if stored is None:
            raise PassRejected()
        user_id, _, auth_session_id = stored.decode().partition("\n")
        return PassHolder(user_id, auth_session_id)
