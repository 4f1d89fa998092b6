"""Access tokens: verifiable from the JWKS, and every forged, expired or misused token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from parlour.auth.service import signing_key_ring
from parlour.common.clock import SystemClock
from tests.clients import Account, assert_problem, new_account
from tests.harness import make_settings


def _newest_private_key(data_dir: Path) -> tuple[str, Any]:
    path = sorted((data_dir / "keys").glob("*.pem"))[-1]
    return path.stem, serialization.load_pem_private_key(path.read_bytes(), password=None)


def _claims(account: Account, **changes: Any) -> dict[str, Any]:
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    claims.update(changes)
    return claims


async def _me(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.get("/auth/users/me", headers={"Authorization": f"Bearer {token}"})


async def test_issued_tokens_verify_against_the_published_jwks(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    jwks = (await http.get("/auth/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(account.access_token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid))
    claims = jwt.decode(account.access_token, key.key, algorithms=["EdDSA"], audience="parlour", issuer="parlour")
    assert claims["sub"] == account.user_id
    assert claims["typ"] == "access"
    assert {"iss", "aud", "sub", "sid", "jti", "typ", "iat", "exp"} <= set(claims)
    assert claims["exp"] - claims["iat"] <= 900
    assert all("d" not in k for k in jwks["keys"]), "private key material must never be published"


async def test_unsigned_alg_none_token_is_refused(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(_claims(account)).encode()).rstrip(b"=")
    token = f"{header.decode()}.{payload.decode()}."
    assert_problem(await _me(http, token), 401, "invalid_token")


async def test_hs256_token_signed_with_the_public_key_is_refused(http: httpx.AsyncClient, tmp_path: Path) -> None:
    account = await new_account(http)
    kid, private_key = _newest_private_key(tmp_path)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": kid}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(_claims(account)).encode()).rstrip(b"=")
    signing_input = header + b"." + payload
    signature = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    token = (signing_input + b"." + signature).decode()
    assert_problem(await _me(http, token), 401, "invalid_token")


async def test_expired_wrong_audience_and_wrong_type_tokens_are_refused(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    account = await new_account(http)
    kid, private_key = _newest_private_key(tmp_path)
    now = int(time.time())
    variants = {
        "expired": _claims(account, iat=now - 1000, exp=now - 60),
        "wrong audience": _claims(account, aud="someone-else"),
        "wrong issuer": _claims(account, iss="someone-else"),
        "refresh type": _claims(account, typ="refresh"),
        "no session id": {k: v for k, v in _claims(account).items() if k != "sid"},
    }
    for name, claims in variants.items():
        token = jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid})
        response = await _me(http, token)
        assert response.status_code == 401, name
        assert_problem(response, 401, "invalid_token")
    assert (await _me(http, account.access_token)).status_code == 200


async def test_a_refresh_token_is_not_an_access_token(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    assert_problem(await _me(http, account.refresh_token), 401, "invalid_token")


async def test_a_token_signed_by_an_unknown_key_is_refused(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    token = jwt.encode(_claims(account), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "x"})
    assert_problem(await _me(http, token), 401, "invalid_token")
    assert_problem(await _me(http, "garbage"), 401, "invalid_token")
    missing = await http.get("/auth/users/me")
    assert_problem(missing, 401, "invalid_token")
    assert missing.headers["www-authenticate"].startswith("Bearer")


async def test_tokens_of_the_old_key_verify_after_rotation_and_new_ones_carry_the_new_kid(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    before = await new_account(http)
    old_kid = jwt.get_unverified_header(before.access_token)["kid"]
    new_kid = signing_key_ring(make_settings(tmp_path, None), SystemClock()).rotate()
    assert new_kid != old_kid

    after = await new_account(http)
    assert jwt.get_unverified_header(after.access_token)["kid"] == new_kid
    assert (await _me(http, before.access_token)).status_code == 200
    assert (await _me(http, after.access_token)).status_code == 200
    published = {key["kid"] for key in (await http.get("/auth/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= published


async def test_session_ids_differ_per_login(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    first = jwt.decode(account.access_token, options={"verify_signature": False})
    assert uuid.UUID(first["sid"])
