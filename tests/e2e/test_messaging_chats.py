"""Chats through real HTTP: direct pairs, groups, members and roles, the chat list, read cursors."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.clients import Account, assert_problem, new_account


async def create_group(http: httpx.AsyncClient, owner: Account, *members: Account, title: str = "Team") -> str:
    """A new group of `owner` with `members`; its id."""
    body = {"kind": "group", "title": title, "member_ids": [member.user_id for member in members]}
    response = await http.post("/api/chats", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    chat_id: str = response.json()["id"]
    return chat_id


async def send(http: httpx.AsyncClient, sender: Account, chat_id: str, body: str, client_id: str) -> dict[str, Any]:
    """Send over REST; asserts success; the message."""
    response = await http.post(
        f"/api/chats/{chat_id}/messages", json={"client_id": client_id, "body": body}, headers=sender.headers
    )
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def chat_list(http: httpx.AsyncClient, account: Account, **params: Any) -> dict[str, Any]:
    response = await http.get("/api/chats", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    listing: dict[str, Any] = response.json()
    return listing


async def test_concurrent_direct_chat_requests_from_both_sides_create_one_chat(http: httpx.AsyncClient) -> None:
    ann, bob = await new_account(http), await new_account(http)
    requests = [
        http.post("/api/chats", json={"kind": "direct", "user_id": other.user_id}, headers=me.headers)
        for me, other in [(ann, bob), (bob, ann)] * 5
    ]
    responses = await asyncio.gather(*requests)
    assert sorted(response.status_code for response in responses) == [200] * 9 + [201]
    assert len({response.json()["id"] for response in responses}) == 1
    chat = responses[0].json()
    assert chat["kind"] == "direct"
    assert chat["title"] is None
    assert sorted(member["user_id"] for member in chat["members"]) == sorted([ann.user_id, bob.user_id])
    listing = await chat_list(http, ann)
    assert [(item["kind"], item["peer_id"]) for item in listing["items"]] == [("direct", bob.user_id)]


async def test_direct_chats_need_a_real_other_user(http: httpx.AsyncClient) -> None:
    ann = await new_account(http)
    for user_id, code in [(ann.user_id, "direct_chat_with_self"), ("no-such-user", "user_unknown")]:
        response = await http.post("/api/chats", json={"kind": "direct", "user_id": user_id}, headers=ann.headers)
        assert_problem(response, 422, code)


async def test_user_ids_that_are_routes_or_paths_name_nobody(http: httpx.AsyncClient) -> None:
    ann, bob = await new_account(http), await new_account(http)
    # `me` is a word of auth's API (the caller), not an id: no chat with a member called "me".
    direct = await http.post("/api/chats", json={"kind": "direct", "user_id": "me"}, headers=ann.headers)
    assert_problem(direct, 422, "user_unknown")
    group = await http.post(
        "/api/chats", json={"kind": "group", "title": "g", "member_ids": ["me"]}, headers=ann.headers
    )
    assert_problem(group, 422, "user_unknown")
    for user_id in ["x/", "../users/me", "a?b", "%2e%2e", "a b", bob.user_id + "/"]:
        body = {"kind": "group", "title": "g", "member_ids": [bob.user_id, user_id]}
        assert_problem(await http.post("/api/chats", json=body, headers=ann.headers), 422, "invalid_input")
        direct = await http.post("/api/chats", json={"kind": "direct", "user_id": user_id}, headers=ann.headers)
        assert_problem(direct, 422, "invalid_input")
    assert (await chat_list(http, ann))["items"] == []


async def test_a_group_is_owned_by_its_creator_and_lists_its_members(http: httpx.AsyncClient) -> None:
    ann, bob, cat = [await new_account(http) for _ in range(3)]
    chat_id = await create_group(http, ann, bob, cat, title="  Book club ")
    chat = (await http.get(f"/api/chats/{chat_id}", headers=cat.headers)).json()
    assert chat["title"] == "Book club"
    roles = {member["user_id"]: member["role"] for member in chat["members"]}
    assert roles == {ann.user_id: "owner", bob.user_id: "member", cat.user_id: "member"}
    bad = await http.post("/api/chats", json={"kind": "group", "title": " ", "member_ids": []}, headers=ann.headers)
    assert_problem(bad, 422, "chat_title_invalid")


async def test_owners_hand_over_and_then_may_leave(http: httpx.AsyncClient) -> None:
    ann, bob = await new_account(http), await new_account(http)
    chat_id = await create_group(http, ann, bob)
    leave = await http.delete(f"/api/chats/{chat_id}/members/{ann.user_id}", headers=ann.headers)
    assert_problem(leave, 409, "last_owner_cannot_leave")
    promoted = await http.patch(
        f"/api/chats/{chat_id}/members/{bob.user_id}", json={"role": "owner"}, headers=ann.headers
    )
    assert promoted.status_code == 200
    leave = await http.delete(f"/api/chats/{chat_id}/members/{ann.user_id}", headers=ann.headers)
    assert leave.status_code == 204
    assert_problem(await http.get(f"/api/chats/{chat_id}", headers=ann.headers), 404, "chat_not_found")


async def test_admins_add_members_and_rename(http: httpx.AsyncClient) -> None:
    ann, bob, cat, dan = [await new_account(http) for _ in range(4)]
    chat_id = await create_group(http, ann, bob)
    added = await http.post(f"/api/chats/{chat_id}/members", json={"user_id": cat.user_id}, headers=bob.headers)
    assert_problem(added, 403, "chat_role_required")
    await http.patch(f"/api/chats/{chat_id}/members/{bob.user_id}", json={"role": "admin"}, headers=ann.headers)
    added = await http.post(f"/api/chats/{chat_id}/members", json={"user_id": cat.user_id}, headers=bob.headers)
    assert added.status_code == 200
    assert cat.user_id in [member["user_id"] for member in added.json()["members"]]
    as_admin = await http.post(
        f"/api/chats/{chat_id}/members", json={"user_id": dan.user_id, "role": "admin"}, headers=bob.headers
    )
    assert_problem(as_admin, 403, "chat_role_required")
    renamed = await http.patch(f"/api/chats/{chat_id}", json={"title": "Renamed"}, headers=bob.headers)
    assert renamed.json()["title"] == "Renamed"
    assert (await http.get(f"/api/chats/{chat_id}", headers=cat.headers)).json()["title"] == "Renamed"


async def test_the_chat_list_is_by_last_activity_with_unread_counts_and_pages(http: httpx.AsyncClient) -> None:
    ann, bob = await new_account(http), await new_account(http)
    chat_ids = [await create_group(http, ann, bob, title=f"Group {i}") for i in range(3)]
    await send(http, ann, chat_ids[0], "first news", "k1")
    await send(http, ann, chat_ids[0], "latest news", "k2")
    first = await chat_list(http, bob, limit=2)
    assert [item["id"] for item in first["items"]] == [chat_ids[0], chat_ids[2]]
    top = first["items"][0]
    assert (top["last_seq"], top["read_seq"], top["unread_count"]) == (2, 0, 2)
    assert top["last_message"]["preview"] == "latest news"
    rest = await chat_list(http, bob, limit=2, cursor=first["next_cursor"])
    assert [item["id"] for item in rest["items"]] == [chat_ids[1]]
    assert rest["next_cursor"] is None
    assert (await chat_list(http, ann))["items"][0]["unread_count"] == 0  # own messages are read
    assert_problem(await http.get("/api/chats?cursor=garbage", headers=bob.headers), 422, "cursor_invalid")


async def test_read_cursors_only_move_forward(http: httpx.AsyncClient) -> None:
    ann, bob = await new_account(http), await new_account(http)
    chat_id = await create_group(http, ann, bob)
    for index in range(3):
        await send(http, ann, chat_id, f"m{index}", f"k{index}")
    for seq in (2, 1):
        response = await http.post(f"/api/chats/{chat_id}/read", json={"seq": seq}, headers=bob.headers)
        assert response.status_code == 204
    item = (await chat_list(http, bob))["items"][0]
    assert (item["read_seq"], item["unread_count"]) == (2, 1)
    await http.post(f"/api/chats/{chat_id}/read", json={"seq": 1000}, headers=bob.headers)
    item = (await chat_list(http, bob))["items"][0]
    assert (item["read_seq"], item["unread_count"]) == (3, 0)
    members = (await http.get(f"/api/chats/{chat_id}", headers=ann.headers)).json()["members"]
    assert {m["user_id"]: m["read_seq"] for m in members} == {ann.user_id: 3, bob.user_id: 3}
