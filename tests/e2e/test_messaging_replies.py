"""Replies through a real server: `reply_to` on a send (WebSocket and REST), a quote of the replied message
in the frame, in history and in the resume answer, and a clear refusal for a message of another chat."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.clients import assert_problem, new_account
from tests.e2e.test_messaging_reactions import history, sent
from tests.ws_client import Client, Frame, group_chat


def reply(chat_id: str, reply_to: Any, body: str = "an answer", client_id: str = "r1") -> Frame:
    """A `message.send` that replies to `reply_to`."""
    return {"type": "message.send", "chat_id": chat_id, "client_id": client_id, "body": body, "reply_to": reply_to}


async def test_a_reply_reaches_every_member_with_a_quote_and_history_quotes_the_message_as_it_is_now(
    http: httpx.AsyncClient,
) -> None:
    ann, bob, cat = [await new_account(http, name) for name in ("ann", "bob", "cat")]
    chat_id = await group_chat(http, ann, [bob, cat])
    a, b, c = [await Client.connect(http, account) for account in (ann, bob, cat)]
    question = await sent(a, chat_id, "Tea at five? " + "long " * 60)
    await b.send(reply(chat_id, question["message_id"], "Yes!"))
    ack = await b.expect("message.ack", client_id="r1")
    quote = {
        "message_id": question["message_id"],
        "seq": 1,
        "sender_id": ann.user_id,
        "preview": ("Tea at five? " + "long " * 60)[:140],
        "deleted": False,
    }
    for client in (a, b, c):
        (_, answer) = await client.messages(chat_id, 2)
        assert (answer["seq"], answer["body"], answer["reply_to"]) == (ack["seq"], "Yes!", quote)

    await a.send({"type": "message.delete", "chat_id": chat_id, "message_id": question["message_id"]})
    await b.expect("message.deleted", message_id=question["message_id"])
    items = await history(http, cat, chat_id)
    assert [item["reply_to"] for item in items] == [None, {**quote, "preview": "", "deleted": True}]
    for client in (a, b, c):
        await client.close()


async def test_a_member_back_from_away_gets_the_quote_of_a_reply_they_missed_in_the_resume_answer(
    http: httpx.AsyncClient,
) -> None:
    ann, bob = await new_account(http, "ann"), await new_account(http, "bob")
    chat_id = await group_chat(http, ann, [bob])
    a = await Client.connect(http, ann)
    question = await sent(a, chat_id, "first")
    await a.send(reply(chat_id, question["message_id"], "and a second thought"))
    await a.expect("message.ack", client_id="r1")

    b = await Client.connect(http, bob)
    await b.send({"type": "resume", "chats": {chat_id: 1}})
    frames = await b.until(lambda frame: frame["type"] == "resume.done")
    (missed,) = [frame for frame in frames if frame["type"] == "message.new"]
    assert missed["reply_to"]["message_id"] == question["message_id"]
    assert (missed["reply_to"]["seq"], missed["reply_to"]["preview"]) == (1, "first")
    for client in (a, b):
        await client.close()


async def test_a_reply_to_a_message_of_another_chat_or_to_none_is_rejected_and_nothing_is_sent(
    http: httpx.AsyncClient,
) -> None:
    ann, bob = await new_account(http, "ann"), await new_account(http, "bob")
    chat_id, other_chat = await group_chat(http, ann, [bob]), await group_chat(http, ann, [])
    a = await Client.connect(http, ann)
    elsewhere = await sent(a, other_chat, "in another chat")
    for index, target in enumerate([elsewhere["message_id"], str(uuid.uuid4())]):
        await a.send(reply(chat_id, target, client_id=f"bad{index}"))
        rejected = await a.expect("message.rejected", client_id=f"bad{index}")
        assert rejected["code"] == "reply_to_invalid"
        assert "reply_to" in rejected["reason"]
    over_rest = await http.post(
        f"/api/chats/{chat_id}/messages",
        json={"body": "x", "reply_to": elsewhere["message_id"]},
        headers=ann.headers,
    )
    assert_problem(over_rest, 422, "reply_to_invalid")
    assert await history(http, bob, chat_id) == []
    await a.close()


async def test_a_reply_sent_over_rest_is_a_reply_like_any_other(http: httpx.AsyncClient) -> None:
    ann, bob = await new_account(http, "ann"), await new_account(http, "bob")
    chat_id = await group_chat(http, ann, [bob])
    b = await Client.connect(http, bob)
    first = await http.post(f"/api/chats/{chat_id}/messages", json={"body": "hello"}, headers=ann.headers)
    answer = await http.post(
        f"/api/chats/{chat_id}/messages", json={"body": "hi", "reply_to": first.json()["id"]}, headers=bob.headers
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["reply_to"]["message_id"] == first.json()["id"]
    (_, live) = await b.messages(chat_id, 2)
    assert live["reply_to"] == answer.json()["reply_to"]
    await b.close()


@pytest.mark.parametrize("reply_to", ["", 7, "x" * 65, {"id": "m"}])
async def test_a_malformed_reply_to_is_refused_by_the_gateway_naming_the_send(
    http: httpx.AsyncClient, reply_to: Any
) -> None:
    ann = await new_account(http, "ann")
    a = await Client.connect(http, ann)
    await a.send(reply("some-chat", reply_to, client_id="bad"))
    error = await a.expect("error", client_id="bad")
    assert error["code"] == "invalid_frame"
    assert "reply_to" in error["reason"]
    await a.close()
