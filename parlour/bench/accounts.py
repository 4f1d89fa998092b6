"""Parlour's HTTP API as the bench uses it: accounts, one-time passes, chats."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from parlour.bench.http import HttpClient, Response

RETRIES = 2
PASSWORD = "bench-password-1"


class SetupError(RuntimeError):
    """The target refused a set-up request; the message says which and why (`status`: its HTTP status)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Endpoints:
    """Where each service of the target answers (one URL for all in embedded mode)."""

    auth: str
    api: str
    gateways: tuple[str, ...]
    notifications: str = ""  # the notifications service's base URL, where it is not `api`

    @property
    def notifications_api(self) -> str:
        return self.notifications or self.api

    @classmethod
    def single(cls, base: str) -> Endpoints:
        return cls(base, base, (base,))


def _checked(response: Response, what: str) -> dict[str, Any]:
    if response.status_code >= 400:
        raise SetupError(f"{what}: {response.status_code} {response.text[:300]}", response.status_code)
    body: dict[str, Any] = response.json()
    return body


async def _post(http: HttpClient, url: str, what: str, **kwargs: Any) -> Response:
    """POST, again once or twice when the connection broke before an answer (a kept-alive socket the
    server had just closed): a pass or a login asked twice is harmless."""
    for attempt in range(RETRIES + 1):
        try:
            return await http.post(url, **kwargs)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            if attempt == RETRIES:
                raise SetupError(f"{what}: {type(error).__name__}: {error}") from error
    raise AssertionError("unreachable")


async def sign_up_and_log_in(http: HttpClient, auth: str, username: str) -> tuple[str, str]:
    """A new account; returns (user id, access token)."""
    credentials = {"username": username, "password": PASSWORD}
    signed_up = await _post(http, f"{auth}/auth/users", "sign up", json=credentials)
    taken = signed_up.status_code == 409  # a retried sign-up whose first attempt went through
    user = None if taken else _checked(signed_up, "sign up")
    pair = _checked(await _post(http, f"{auth}/auth/sessions", "log in", json=credentials), "log in")
    token = str(pair["access_token"])
    if user is None:
        me = await http.get(f"{auth}/auth/users/me", headers={"Authorization": f"Bearer {token}"})
        user = _checked(me, "who am I")
    return str(user["id"]), token


async def log_in(http: HttpClient, auth: str, username: str) -> str:
    """A new access token for an existing bench account (the old one expired)."""
    credentials = {"username": username, "password": PASSWORD}
    answer = await _post(http, f"{auth}/auth/sessions", "log in", json=credentials)
    return str(_checked(answer, "log in")["access_token"])


async def issue_pass(http: HttpClient, gateway: str, token: str) -> str:
    """A one-time pass for the WebSocket."""
    headers = {"Authorization": f"Bearer {token}"}
    answer = await _post(http, f"{gateway}/gateway/passes", "issue a pass", headers=headers)
    return str(_checked(answer, "issue a pass")["pass"])


async def create_direct_chat(http: HttpClient, api: str, token: str, other_user_id: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    body = {"kind": "direct", "user_id": other_user_id}
    return str(_checked(await http.post(f"{api}/api/chats", json=body, headers=headers), "create a chat")["id"])


async def add_webhook(http: HttpClient, api: str, token: str, url: str) -> None:
    """Register a webhook endpoint for the token's user (the notifications service's route)."""
    headers = {"Authorization": f"Bearer {token}"}
    _checked(await http.post(f"{api}/api/notifications/webhooks", json={"url": url}, headers=headers), "add a webhook")


async def create_group_chat(http: HttpClient, api: str, token: str, title: str, member_ids: list[str]) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    body = {"kind": "group", "title": title, "member_ids": member_ids}
    return str(_checked(await http.post(f"{api}/api/chats", json=body, headers=headers), "create a group")["id"])
