"""Small HTTP client helpers that speak Parlour's public API, as a real client would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "correct horse battery"


def unique_username(prefix: str = "u") -> str:
    """A username no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@dataclass
class Account:
    user_id: str
    username: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def sign_up(http: httpx.AsyncClient, username: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
    """Sign a new user up; asserts success; returns the user."""
    response = await http.post("/auth/users", json={"username": username or unique_username(), "password": password})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def log_in(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    """Log in; asserts success; returns the token pair."""
    response = await http.post("/auth/sessions", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


async def new_account(http: httpx.AsyncClient, prefix: str = "u") -> Account:
    """A signed-up, logged-in user."""
    user = await sign_up(http, unique_username(prefix))
    pair = await log_in(http, user["username"])
    return Account(user["id"], user["username"], pair["access_token"], pair["refresh_token"])


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert `response` is an RFC 9457 problem document with this status and code; returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"] == f"urn:parlour:error:{code}"
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert "Traceback" not in response.text
    return body
