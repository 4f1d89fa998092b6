"""Access-token verification that every service does locally, from the auth service's public keys.

Keys come from a `JwksSource` (over HTTP in distributed mode, straight from the key ring in embedded
mode) and are cached; an unknown `kid` triggers at most one refetch per `refetch_interval`, so a flood of
forged tokens cannot turn into a flood of JWKS requests.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from parlour.common.clock import Clock
from parlour.common.errors import Unauthenticated, Unavailable
from parlour.common.revocations import Revocations

ALLOWED_ALGORITHMS = frozenset({"EdDSA"})
ACCESS_TOKEN_TYPE = "access"
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "jti", "typ", "iat", "exp"]


class InvalidToken(Unauthenticated):
    """The access token is missing, malformed, forged, expired or of the wrong kind."""

    code = "invalid_token"
    default_message = "The access token is not valid: log in again or refresh it."


class SessionEnded(InvalidToken):
    """The token is genuine, but its session was logged out or revoked."""

    code = "session_revoked"
    default_message = "This session has ended: log in again."


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified access token speaks for."""

    user_id: str
    session_id: str
    token_id: str
    expires_at: int


class JwksSource(ABC):
    """Where a verifier gets the JSON Web Key Set of the auth service."""

    @abstractmethod
    async def fetch(self) -> Mapping[str, Any]:
        """The current JWKS document (`{"keys": [...]}`)."""


class HttpJwksSource(JwksSource):
    """Fetches the JWKS from the auth service over HTTP (distributed mode)."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url

    async def fetch(self) -> Mapping[str, Any]:
        try:
            response = await self._client.get(self._url, timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise Unavailable("The auth service's public keys cannot be fetched.") from exc
        document: Mapping[str, Any] = response.json()
        return document


class TokenVerifier:
    """Verifies access tokens: algorithm allowlist, signature by a published key, claims, expiry.

    With `revocations`, a token of a revoked session is refused too (`SessionEnded`).
    """

    def __init__(
        self,
        source: JwksSource,
        *,
        issuer: str,
        audience: str,
        clock: Clock,
        leeway_seconds: int = 10,
        cache_seconds: int = 300,
        refetch_interval: float = 5.0,
        revocations: Revocations | None = None,
    ) -> None:
        self._source = source
        self._revocations = revocations
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._leeway = leeway_seconds
        self._cache_seconds = cache_seconds
        self._refetch_interval = refetch_interval
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def verify(self, token: str, *, expected_type: str = ACCESS_TOKEN_TYPE) -> Principal:
        """The principal of a valid token of `expected_type`; raises `InvalidToken` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALLOWED_ALGORITHMS or not isinstance(kid, str):
            raise InvalidToken("The access token is signed with an algorithm Parlour does not accept.")
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("The access token has expired: refresh it.") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        if claims.get("typ") != expected_type:
            raise InvalidToken(f"This is not an {expected_type} token.")
        principal = Principal(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
        )
        if self._revocations is not None and await self._revocations.is_revoked(principal.session_id):
            raise SessionEnded()
        return principal

    async def _key(self, kid: str) -> jwt.PyJWK:
        now = self._clock.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at > self._cache_seconds
        may_refetch = self._fetched_at is None or now - self._fetched_at > self._refetch_interval
        if stale or (kid not in self._keys and may_refetch):
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("The access token is signed with an unknown key.")
        return key

    async def _refresh(self) -> None:
        async with self._lock:
            document = await self._source.fetch()
            keys: dict[str, jwt.PyJWK] = {}
            for entry in document.get("keys", []):
                if entry.get("alg") in ALLOWED_ALGORITHMS and isinstance(entry.get("kid"), str):
                    keys[entry["kid"]] = jwt.PyJWK(entry)
            self._keys = keys
            self._fetched_at = self._clock.monotonic()
