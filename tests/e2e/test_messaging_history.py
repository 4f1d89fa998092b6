"""Messages through real HTTP: idempotent sends under concurrency, validation, and history paging."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clients import Account, assert_problem, new_account
from tests.e2e.test_messaging_chats import create_group, send

HISTORY_SIZE = 23


async def test_the_same_client_id_sent_five_times_at_once_makes_one_message_and_five_equal_answers(
    http: httpx.AsyncClient,
) -> None:
    ann, bob = await new_account(http), await new_account(http)
    chat_id = await create_group(http, ann, bob)
    body = {"client_id": "5d0c1c2e-once", "body": "exactly once"}
    responses = await asyncio.gather(
        *(http.post(f"/api/chats/{chat_id}/messages", json=body, headers=ann.headers) for _ in range(5))
    )
    assert {response.status_code for response in responses} == {201}
    assert len({response.text for response in responses}) == 1
    history = (await http.get(f"/api/chats/{chat_id}/messages", headers=bob.headers)).json()["items"]
    assert [(m["seq"], m["body"], m["client_id"]) for m in history] == [(1, "exactly once", "5d0c1c2e-once")]


async def test_a_client_id_is_one_message_of_one_sender(http: httpx.AsyncClient) -> None:
    ann, bob = await new_account(http), await new_account(http)
    first, second = await create_group(http, ann, bob), await create_group(http, ann, bob)
    await send(http, ann, first, "mine", "shared-key")
    theirs = await send(http, bob, first, "theirs", "shared-key")  # another sender: another message
    assert theirs["seq"] == 2
    elsewhere = await http.post(
        f"/api/chats/{second}/messages", json={"client_id": "shared-key", "body": "x"}, headers=ann.headers
    )
    assert_problem(elsewhere, 409, "client_id_reused")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"client_id": "k", "body": "   "}, "message_body_invalid"),
        ({"client_id": "k", "body": "x" * 4001}, "message_body_invalid"),
        ({"client_id": "has space", "body": "x"}, "client_id_invalid"),
        ({"client_id": "k"}, "invalid_input"),
    ],
)
async def test_bad_messages_are_refused_with_a_reason(http: httpx.AsyncClient, body: dict[str, Any], code: str) -> None:
    ann = await new_account(http)
    chat_id = await create_group(http, ann)
    response = await http.post(f"/api/chats/{chat_id}/messages", json=body, headers=ann.headers)
    assert_problem(response, 422, code)


async def test_history_is_in_seq_order_with_utc_times_and_bounded_pages(http: httpx.AsyncClient) -> None:
    ann = await new_account(http)
    chat_id = await create_group(http, ann)
    for index in range(5):
        await send(http, ann, chat_id, f"m{index}", f"k{index}")
    page = (await http.get(f"/api/chats/{chat_id}/messages", params={"limit": 2}, headers=ann.headers)).json()
    assert ([m["seq"] for m in page["items"]], page["has_more"]) == ([4, 5], True)
    assert page["items"][0]["created_at"].endswith("Z")
    too_many = await http.get(f"/api/chats/{chat_id}/messages", params={"limit": 201}, headers=ann.headers)
    assert_problem(too_many, 422, "invalid_input")


@pytest.fixture
async def full_chat(http: httpx.AsyncClient) -> tuple[Account, str, list[dict[str, Any]]]:
    """A chat of HISTORY_SIZE messages, some edited and some deleted; its whole history in one read."""
    ann, bob = await new_account(http), await new_account(http)
    chat_id = await create_group(http, ann, bob)
    for index in range(HISTORY_SIZE):
        message = await send(http, ann if index % 3 else bob, chat_id, f"message {index}", f"k{index}")
        author = ann if index % 3 else bob
        if index % 5 == 0:
            path = f"/api/chats/{chat_id}/messages/{message['id']}"
            await http.patch(path, json={"body": f"edited {index}"}, headers=author.headers)
        if index % 7 == 0:
            await http.delete(f"/api/chats/{chat_id}/messages/{message['id']}", headers=author.headers)
    whole = (
        await http.get(f"/api/chats/{chat_id}/messages", params={"after_seq": 0, "limit": 200}, headers=ann.headers)
    ).json()
    assert [m["seq"] for m in whole["items"]] == list(range(1, HISTORY_SIZE + 1))
    return ann, chat_id, whole["items"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pivot=st.integers(0, HISTORY_SIZE),
    limits=st.lists(st.integers(1, 9), min_size=1, max_size=8),
    directions=st.lists(st.booleans(), min_size=1, max_size=40),
)
async def test_any_sequence_of_after_and_before_pages_reconstructs_the_chat_exactly(
    http: httpx.AsyncClient,
    full_chat: tuple[Account, str, list[dict[str, Any]]],
    pivot: int,
    limits: list[int],
    directions: list[bool],
) -> None:
    account, chat_id, whole = full_chat
    forward: list[dict[str, Any]] = []  # pages read with after_seq, from the pivot up
    backward: list[dict[str, Any]] = []  # pages read with before_seq, from the pivot down
    more = {"forward": True, "backward": True}
    step = 0
    while more["forward"] or more["backward"]:
        go_forward = directions[step % len(directions)] if more["forward"] and more["backward"] else more["forward"]
        limit = limits[step % len(limits)]
        step += 1
        if go_forward:
            after = forward[-1]["seq"] if forward else pivot
            page = await _page(http, account, chat_id, after_seq=after, limit=limit)
            assert all(m["seq"] > after for m in page["items"])
            forward += page["items"]
            more["forward"] = page["has_more"]
        else:
            before = backward[0]["seq"] if backward else pivot + 1
            page = await _page(http, account, chat_id, before_seq=before, limit=limit)
            assert all(m["seq"] < before for m in page["items"])
            backward = page["items"] + backward
            more["backward"] = page["has_more"]
        assert len(page["items"]) <= limit
        assert [m["seq"] for m in page["items"]] == sorted(m["seq"] for m in page["items"])
    assert backward + forward == whole


async def _page(http: httpx.AsyncClient, account: Account, chat_id: str, **params: int) -> dict[str, Any]:
    response = await http.get(f"/api/chats/{chat_id}/messages", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page
