"""Reactions through a real server: put on and taken off over the WebSocket, live for every member, in
history and in the resume answer, and refused with a clear error frame when they cannot be."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.clients import Account, assert_problem, new_account
from tests.ws_client import Client, Frame, group_chat

THUMBS, HEART, PARTY = "👍", "❤️", "🎉"


def react(chat_id: str, message_id: str, emoji: str, *, remove: bool = False) -> Frame:
    """The `message.react` frame a client sends."""
    return {"type": "message.react", "chat_id": chat_id, "message_id": message_id, "emoji": emoji, "remove": remove}


async def sent(client: Client, chat_id: str, body: str) -> Frame:
    """Send `body` and wait for its ack."""
    return await client.expect("message.ack", client_id=await client.send_message(chat_id, body))


async def history(http: httpx.AsyncClient, account: Account, chat_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/api/chats/{chat_id}/messages", headers=account.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_reactions_reach_every_member_live_each_once_per_person_and_stay_in_history(
    http: httpx.AsyncClient,
) -> None:
    ann, bob, cat = [await new_account(http, name) for name in ("ann", "bob", "cat")]
    chat_id = await group_chat(http, ann, [bob, cat])
    a, b, c = [await Client.connect(http, account) for account in (ann, bob, cat)]
    message_id = (await sent(a, chat_id, "tea at five?"))["message_id"]

    await b.send(react(chat_id, message_id, THUMBS))
    await b.send(react(chat_id, message_id, THUMBS))  # twice is once
    await b.send(react(chat_id, message_id, PARTY))
    await c.send(react(chat_id, message_id, THUMBS))
    for client in (a, b, c):
        frames = [await client.expect("message.reacted", message_id=message_id) for _ in range(4)]
        assert [(f["user_id"], f["emoji"], f["added"]) for f in frames] == [
            (bob.user_id, THUMBS, True),
            (bob.user_id, THUMBS, True),
            (bob.user_id, PARTY, True),
            (cat.user_id, THUMBS, True),
        ]
        assert frames[-1]["chat_id"] == chat_id
        assert frames[-1]["seq"] == 1
        assert frames[-1]["reactions"] == [
            {"emoji": THUMBS, "user_ids": [bob.user_id, cat.user_id]},
            {"emoji": PARTY, "user_ids": [bob.user_id]},
        ]

    await b.send(react(chat_id, message_id, THUMBS, remove=True))
    taken_off = await a.expect("message.reacted", message_id=message_id)
    assert (taken_off["user_id"], taken_off["added"]) == (bob.user_id, False)
    (stored,) = await history(http, ann, chat_id)
    assert (
        stored["reactions"]
        == taken_off["reactions"]
        == [
            {"emoji": THUMBS, "user_ids": [cat.user_id]},
            {"emoji": PARTY, "user_ids": [bob.user_id]},
        ]
    )
    for client in (a, b, c):
        await client.close()


async def test_a_member_back_from_away_gets_the_reactions_of_what_they_missed_in_the_resume_answer(
    http: httpx.AsyncClient,
) -> None:
    ann, bob = await new_account(http, "ann"), await new_account(http, "bob")
    chat_id = await group_chat(http, ann, [bob])
    a = await Client.connect(http, ann)
    message_id = (await sent(a, chat_id, "while you were out"))["message_id"]
    await a.send(react(chat_id, message_id, HEART))
    await a.expect("message.reacted", message_id=message_id)

    b = await Client.connect(http, bob)
    await b.send({"type": "resume", "chats": {chat_id: 0}})
    frames = await b.until(lambda frame: frame["type"] == "resume.done")
    (missed,) = [frame for frame in frames if frame["type"] == "message.new"]
    assert missed["reactions"] == [{"emoji": HEART, "user_ids": [ann.user_id]}]
    for client in (a, b):
        await client.close()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"emoji": "🐍"}, "reaction_unknown"),
        ({"emoji": "+1"}, "reaction_unknown"),
        ({"message_id": "no-such-message"}, "message_not_found"),
    ],
)
async def test_a_reaction_that_cannot_be_is_answered_with_an_error_frame_naming_the_command(
    http: httpx.AsyncClient, change: dict[str, str], code: str
) -> None:
    ann, bob = await new_account(http, "ann"), await new_account(http, "bob")
    chat_id = await group_chat(http, ann, [bob])
    a = await Client.connect(http, ann)
    message_id = (await sent(a, chat_id, "react to me"))["message_id"]
    await a.send({**react(chat_id, message_id, THUMBS), **change})
    error = await a.expect("error", command="message.react")
    assert error["code"] == code
    assert error["reason"]
    (stored,) = await history(http, ann, chat_id)
    assert stored["reactions"] == []
    await a.close()


async def test_outsiders_cannot_react_and_a_deleted_message_takes_no_reaction_and_keeps_none(
    http: httpx.AsyncClient,
) -> None:
    ann, bob, eve = [await new_account(http, name) for name in ("ann", "bob", "eve")]
    chat_id = await group_chat(http, ann, [bob])
    a, e = await Client.connect(http, ann), await Client.connect(http, eve)
    message_id = (await sent(a, chat_id, "soon gone"))["message_id"]
    await e.send(react(chat_id, message_id, THUMBS))
    assert (await e.expect("error", command="message.react"))["code"] == "chat_not_found"

    await a.send(react(chat_id, message_id, THUMBS))
    await a.expect("message.reacted", message_id=message_id)
    await a.send({"type": "message.delete", "chat_id": chat_id, "message_id": message_id})
    await a.expect("message.deleted", message_id=message_id)
    await a.send(react(chat_id, message_id, HEART))
    assert (await a.expect("error", command="message.react"))["code"] == "message_deleted"
    (stored,) = await history(http, ann, chat_id)
    assert (stored["deleted"], stored["reactions"]) == (True, [])
    for client in (a, e):
        await client.close()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "message.react", "chat_id": "c", "message_id": "m"},
        {"type": "message.react", "chat_id": "c", "message_id": "m", "emoji": 1},
        {"type": "message.react", "chat_id": "c", "message_id": "m", "emoji": "x" * 17},
        {"type": "message.react", "chat_id": "c", "message_id": "m", "emoji": THUMBS, "remove": "yes"},
    ],
)
async def test_a_malformed_reaction_is_refused_by_the_gateway(http: httpx.AsyncClient, frame: Frame) -> None:
    ann = await new_account(http, "ann")
    a = await Client.connect(http, ann)
    await a.send(frame)
    error = await a.expect("error")
    assert error["code"] == "invalid_frame"
    assert "message.react" in error["reason"]
    await a.close()


async def test_over_rest_a_member_reacts_and_unreacts_and_every_member_hears_it(http: httpx.AsyncClient) -> None:
    ann, bob = await new_account(http, "ann"), await new_account(http, "bob")
    chat_id = await group_chat(http, ann, [bob])
    a = await Client.connect(http, ann)
    message_id = (await sent(a, chat_id, "lunch?"))["message_id"]
    path = f"/api/chats/{chat_id}/messages/{message_id}/reactions"

    for _ in range(2):  # twice is once
        put = await http.put(f"{path}/{HEART}", headers=bob.headers)
        assert put.status_code == 200, put.text
        assert put.json()["reactions"] == [{"emoji": HEART, "user_ids": [bob.user_id]}]
    frame = await a.expect("message.reacted", message_id=message_id)
    assert (frame["user_id"], frame["emoji"], frame["added"]) == (bob.user_id, HEART, True)

    taken = await http.delete(f"{path}/{HEART}", headers=bob.headers)
    assert taken.status_code == 200
    assert taken.json()["reactions"] == []
    await a.expect("message.reacted", message_id=message_id, added=False)
    assert (await history(http, ann, chat_id))[0]["reactions"] == []
    await a.close()


async def test_over_rest_an_unknown_reaction_an_outsider_and_a_missing_message_get_problem_documents(
    http: httpx.AsyncClient,
) -> None:
    ann, bob, eve = [await new_account(http, name) for name in ("ann", "bob", "eve")]
    chat_id = await group_chat(http, ann, [bob])
    a = await Client.connect(http, ann)
    message_id = (await sent(a, chat_id, "hello"))["message_id"]
    path = f"/api/chats/{chat_id}/messages/{message_id}/reactions"

    assert_problem(await http.put(f"{path}/🐍", headers=bob.headers), 422, "reaction_unknown")
    assert_problem(await http.put(f"{path}/{'x' * 17}", headers=bob.headers), 422, "invalid_input")
    assert_problem(await http.put(f"{path}/{THUMBS}", headers=eve.headers), 404, "chat_not_found")
    missing = f"/api/chats/{chat_id}/messages/no-such-message/reactions/{THUMBS}"
    assert_problem(await http.put(missing, headers=bob.headers), 404, "message_not_found")
    assert_problem(await http.put(f"{path}/{THUMBS}"), 401, "invalid_token")
    assert (await history(http, ann, chat_id))[0]["reactions"] == []
    await a.close()
