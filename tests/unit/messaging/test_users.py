"""Asking auth about a user id the projection does not know yet (HTTP, through a mock transport)."""

from __future__ import annotations

import httpx
import pytest

from parlour.common.errors import Unavailable
from parlour.messaging.adapters.users import HttpUserLookup
from parlour.messaging.application.ports import ProjectedUser
from parlour.messaging.domain.messages import OnBehalf

CALLER = OnBehalf("token-1")


def lookup(answer: httpx.Response | Exception, auth_url: str, seen: list[httpx.Request]) -> HttpUserLookup:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return HttpUserLookup(httpx.AsyncClient(transport=httpx.MockTransport(handle)), auth_url)


async def test_a_known_user_is_fetched_as_the_caller_from_auth() -> None:
    seen: list[httpx.Request] = []
    body = {"id": "u-1", "username": "ann", "display_name": "Ann", "created_at": "2026-01-01T00:00:00Z"}
    found = await lookup(httpx.Response(200, json=body), "http://auth:9000", seen).find("u-1", CALLER)
    assert found == ProjectedUser("u-1", "ann", "Ann")
    assert str(seen[0].url) == "http://auth:9000/auth/users/u-1"
    assert seen[0].headers["authorization"] == "Bearer token-1"


@pytest.mark.parametrize("user_id", ["u/1", "../me", "a?b", "a#b", "%2e", "", "x" * 65])
async def test_an_id_outside_the_id_rule_is_nobody_and_never_becomes_a_url(user_id: str) -> None:
    seen: list[httpx.Request] = []
    assert await lookup(httpx.Response(200, json={}), "http://auth", seen).find(user_id, CALLER) is None
    assert seen == []


async def test_an_answer_about_another_user_is_not_this_user() -> None:
    # `/auth/users/me` answers with the caller: "me" must not become the caller, nor a user called "me".
    body = {"id": "caller-id", "username": "ann", "display_name": "Ann", "created_at": "2026-01-01T00:00:00Z"}
    assert await lookup(httpx.Response(200, json=body), "http://auth", []).find("me", CALLER) is None


async def test_unknown_users_are_none_and_nothing_is_asked_without_credentials() -> None:
    seen: list[httpx.Request] = []
    assert await lookup(httpx.Response(404), "http://auth", seen).find("ghost", CALLER) is None
    assert await lookup(httpx.Response(404), "http://auth", seen).find("ghost", None) is None
    assert len(seen) == 1


@pytest.mark.parametrize("answer", [httpx.Response(500), httpx.ConnectError("refused")])
async def test_an_auth_that_cannot_answer_is_unavailable_not_unknown(answer: httpx.Response | Exception) -> None:
    with pytest.raises(Unavailable):
        await lookup(answer, "http://auth", []).find("u1", CALLER)
