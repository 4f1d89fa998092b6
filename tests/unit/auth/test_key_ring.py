"""The signing key ring: newest signs, retired keys stay published until their tokens expire."""

from __future__ import annotations

from pathlib import Path

import jwt

from parlour.auth.infrastructure.keys import JwtAccessTokenIssuer, SigningKeyRing
from parlour.common.clock import ManualClock


def test_first_use_creates_one_private_key_readable_only_by_its_owner(tmp_path: Path) -> None:
    ring = SigningKeyRing(tmp_path / "keys", ManualClock(), retire_after_seconds=910)
    ring.ensure()
    ring.ensure()
    files = list((tmp_path / "keys").glob("*.pem"))
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o077 == 0


def test_a_rotated_out_key_is_published_until_its_tokens_expire(tmp_path: Path) -> None:
    clock = ManualClock()
    ring = SigningKeyRing(tmp_path, clock, retire_after_seconds=910)
    old = ring.rotate()
    clock.advance(1)
    new = ring.rotate()
    assert ring.signing_key().kid == new
    assert [key["kid"] for key in ring.jwks()["keys"]] == [new, old]
    clock.advance(909)
    assert len(ring.jwks()["keys"]) == 2
    clock.advance(2)
    assert [key["kid"] for key in ring.jwks()["keys"]] == [new]


def test_a_rotation_by_another_process_is_picked_up(tmp_path: Path) -> None:
    clock = ManualClock()
    ring = SigningKeyRing(tmp_path, clock, retire_after_seconds=910)
    ring.ensure()
    clock.advance(1)
    other_process = SigningKeyRing(tmp_path, clock, retire_after_seconds=910)
    kid = other_process.rotate()
    issuer = JwtAccessTokenIssuer(ring, clock, issuer="parlour", audience="parlour", ttl_seconds=900)
    token = issuer.issue("user", "session")
    assert jwt.get_unverified_header(token.token)["kid"] == kid
