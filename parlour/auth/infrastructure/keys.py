"""Signing keys: Ed25519 private keys in a folder of the data directory, one PEM file per key.

The newest key signs. Older keys stay published in the JWKS until every token they signed has expired
(`retire_after` seconds after their successor was created), so a rotation never logs anybody out.
A key id (`kid`) starts with its creation time in milliseconds, so ids sort by age.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from parlour.auth.application.ports import AccessToken, AccessTokenIssuer
from parlour.common.clock import Clock
from parlour.common.tokens import ACCESS_TOKEN_TYPE, JwksSource

ALGORITHM = "EdDSA"


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @property
    def created_ms(self) -> int:
        return int(self.kid.split("-", 1)[0])


class SigningKeyRing:
    """The signing keys in `folder`; re-read when the folder changes (a rotation by another process)."""

    def __init__(self, folder: Path, clock: Clock, *, retire_after_seconds: float) -> None:
        self._folder = folder
        self._clock = clock
        self._retire_after_ms = int(retire_after_seconds * 1000)
        self._keys: list[SigningKey] = []
        self._seen_mtime: int | None = None

    def ensure(self) -> None:
        """Create the folder and a first key when there is none."""
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not any(self._folder.glob("*.pem")):
            self.rotate()

    def rotate(self) -> str:
        """Add a new newest key; returns its `kid`."""
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        kid = f"{int(self._clock.now() * 1000):013d}-{secrets.token_hex(4)}"
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        partial = self._folder / f".{kid}.{uuid.uuid4().hex}.tmp"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        partial.rename(self._folder / f"{kid}.pem")  # atomic: readers never see half a key
        return kid

    def signing_key(self) -> SigningKey:
        """The newest key."""
        keys = self._current()
        if not keys:
            raise RuntimeError(f"no signing key in {self._folder}: run `parlour keys rotate`")
        return keys[-1]

    def jwks(self) -> dict[str, Any]:
        """The public keys that may still have valid tokens: the newest and recently retired ones."""
        keys = self._current()
        now_ms = int(self._clock.now() * 1000)
        published = [
            key
            for key, successor in zip(keys, [*keys[1:], None], strict=True)
            if successor is None or now_ms - successor.created_ms < self._retire_after_ms
        ]
        return {"keys": [_public_jwk(key) for key in reversed(published)]}

    def _current(self) -> list[SigningKey]:
        mtime = self._folder.stat().st_mtime_ns if self._folder.exists() else None
        if mtime != self._seen_mtime:
            self._keys = sorted((_load(path) for path in self._folder.glob("*.pem")), key=lambda k: k.kid)
            self._seen_mtime = mtime
        return self._keys


def _load(path: Path) -> SigningKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"{path} is not an Ed25519 key")
    return SigningKey(path.stem, key)


def _public_jwk(key: SigningKey) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.OKPAlgorithm.to_jwk(key.private_key.public_key(), as_dict=True)
    return {**jwk, "kid": key.kid, "alg": ALGORITHM, "use": "sig"}


class KeyRingJwksSource(JwksSource):
    """The JWKS straight from the local key ring: how services in the auth process verify tokens."""

    def __init__(self, ring: SigningKeyRing) -> None:
        self._ring = ring

    async def fetch(self) -> Mapping[str, Any]:
        return self._ring.jwks()


class JwtAccessTokenIssuer(AccessTokenIssuer):
    """Signs short-lived access JWTs with the ring's newest key."""

    def __init__(self, ring: SigningKeyRing, clock: Clock, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._ring = ring
        self._clock = clock
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds

    def issue(self, user_id: str, session_id: str) -> AccessToken:
        key = self._ring.signing_key()
        now = int(self._clock.now())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user_id,
            "sid": session_id,
            "jti": uuid.uuid4().hex,
            "typ": ACCESS_TOKEN_TYPE,
            "iat": now,
            "exp": now + self._ttl,
        }
        token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
        return AccessToken(token, self._ttl)
