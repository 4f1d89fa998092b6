"""One-time passes: what they are made of and how they are stored. Pure standard library.

A pass is 32 random bytes (256 bits) in URL-safe base64. Only its SHA-256 is stored (in the key-value
store, with a TTL), so a leaked store does not leak usable passes; being random, it needs no salt.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

PASS_BYTES = 32
# A pass as issued is 43 characters; anything much longer is not one of ours and is refused unhashed.
MAX_PASS_LENGTH = 128
KEY_PREFIX = "gateway.pass:"


@dataclass(frozen=True, slots=True)
class PassHolder:
    """Who a redeemed pass speaks for: the user, and the login session that asked for it."""

    user_id: str
    auth_session_id: str


def new_pass() -> str:
    """A fresh pass: 256 bits from the operating system's CSPRNG."""
    return secrets.token_urlsafe(PASS_BYTES)


def pass_key(secret: str) -> str:
    """The key-value key a pass is stored under: its SHA-256, never the pass itself."""
    return KEY_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def plausible(secret: str | None) -> bool:
    """Whether `secret` could be a pass at all (cheap checks before touching the store)."""
    return secret is not None and 0 < len(secret) <= MAX_PASS_LENGTH and secret.isascii()
