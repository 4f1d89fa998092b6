"""The authorization matrix through real HTTP: outsiders and removed members see nothing, roles hold."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.clients import Account, assert_problem, new_account
from tests.e2e.test_messaging_chats import chat_list, create_group, send


@dataclass
class Scene:
    owner: Account
    member: Account
    outsider: Account
    removed: Account
    chat_id: str
    owners_message: dict[str, Any]


@pytest.fixture
async def scene(http: httpx.AsyncClient) -> Scene:
    owner, member, outsider, removed = [await new_account(http) for _ in range(4)]
    chat_id = await create_group(http, owner, member, removed)
    owners_message = await send(http, owner, chat_id, "from the owner", "o1")
    await send(http, removed, chat_id, "from the soon removed", "r1")
    response = await http.delete(f"/api/chats/{chat_id}/members/{removed.user_id}", headers=owner.headers)
    assert response.status_code == 204
    return Scene(owner, member, outsider, removed, chat_id, owners_message)


def attempts(scene: Scene) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every way to touch a chat: method, path, JSON body."""
    chat, message = scene.chat_id, scene.owners_message["id"]
    return [
        ("GET", f"/api/chats/{chat}", None),
        ("GET", f"/api/chats/{chat}/messages", None),
        ("POST", f"/api/chats/{chat}/messages", {"client_id": str(uuid.uuid4()), "body": "let me in"}),
        ("PATCH", f"/api/chats/{chat}/messages/{message}", {"body": "rewritten"}),
        ("DELETE", f"/api/chats/{chat}/messages/{message}", None),
        ("POST", f"/api/chats/{chat}/read", {"seq": 1}),
        ("PATCH", f"/api/chats/{chat}", {"title": "Mine now"}),
        ("POST", f"/api/chats/{chat}/members", {"user_id": scene.outsider.user_id}),
        ("DELETE", f"/api/chats/{chat}/members/{scene.member.user_id}", None),
        ("PATCH", f"/api/chats/{chat}/members/{scene.member.user_id}", {"role": "owner"}),
    ]


async def test_outsiders_and_removed_members_get_404_for_everything(http: httpx.AsyncClient, scene: Scene) -> None:
    for account in (scene.outsider, scene.removed):
        for method, path, body in attempts(scene):
            response = await http.request(method, path, json=body, headers=account.headers)
            assert_problem(response, 404, "chat_not_found")
        assert scene.chat_id not in [item["id"] for item in (await chat_list(http, account))["items"]]
    history = (await http.get(f"/api/chats/{scene.chat_id}/messages", headers=scene.owner.headers)).json()
    assert [m["body"] for m in history["items"]] == ["from the owner", "from the soon removed"]


async def test_a_chat_one_cannot_see_looks_exactly_like_one_that_does_not_exist(
    http: httpx.AsyncClient, scene: Scene
) -> None:
    real = await http.get(f"/api/chats/{scene.chat_id}/messages", headers=scene.outsider.headers)
    fake = await http.get(f"/api/chats/{uuid.uuid4()}/messages", headers=scene.outsider.headers)
    documents = [assert_problem(response, 404, "chat_not_found") for response in (real, fake)]
    for document in documents:
        del document["instance"], document["request_id"]
    assert documents[0] == documents[1]


async def test_a_member_cannot_edit_or_delete_anothers_message_nor_manage_the_group(
    http: httpx.AsyncClient, scene: Scene
) -> None:
    chat, message, member = scene.chat_id, scene.owners_message["id"], scene.member
    edit = await http.patch(f"/api/chats/{chat}/messages/{message}", json={"body": "x"}, headers=member.headers)
    assert_problem(edit, 403, "message_not_yours")
    delete = await http.delete(f"/api/chats/{chat}/messages/{message}", headers=member.headers)
    assert_problem(delete, 403, "chat_role_required")
    rename = await http.patch(f"/api/chats/{chat}", json={"title": "x"}, headers=member.headers)
    assert_problem(rename, 403, "chat_role_required")
    remove = await http.delete(f"/api/chats/{chat}/members/{scene.owner.user_id}", headers=member.headers)
    assert_problem(remove, 403, "chat_role_required")
    history = (await http.get(f"/api/chats/{chat}/messages", headers=member.headers)).json()
    assert history["items"][0]["body"] == "from the owner"


async def test_members_read_send_edit_their_own_and_owners_delete_any(http: httpx.AsyncClient, scene: Scene) -> None:
    chat, member, owner = scene.chat_id, scene.member, scene.owner
    mine = await send(http, member, chat, "typo", "m1")
    edited = await http.patch(
        f"/api/chats/{chat}/messages/{mine['id']}", json={"body": "fixed"}, headers=member.headers
    )
    assert edited.status_code == 200
    assert (edited.json()["body"], edited.json()["seq"]) == ("fixed", mine["seq"])
    assert edited.json()["edited_at"] is not None
    deleted = await http.delete(f"/api/chats/{chat}/messages/{mine['id']}", headers=owner.headers)
    assert deleted.status_code == 200
    assert (deleted.json()["deleted"], deleted.json()["body"], deleted.json()["seq"]) == (True, "", mine["seq"])
    again = await http.patch(f"/api/chats/{chat}/messages/{mine['id']}", json={"body": "back"}, headers=member.headers)
    assert_problem(again, 409, "message_deleted")


async def test_requests_without_a_valid_token_are_refused(http: httpx.AsyncClient, scene: Scene) -> None:
    assert_problem(await http.get("/api/chats"), 401, "invalid_token")
    forged = {"Authorization": "Bearer not.a.token"}
    assert_problem(await http.get(f"/api/chats/{scene.chat_id}", headers=forged), 401, "invalid_token")
