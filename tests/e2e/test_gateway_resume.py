"""Resume: a client that was away gets exactly what it missed, in order, then live messages, no duplicates."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.clients import new_account
from tests.ws_client import Client, direct_chat


async def send_all(client: Client, chat_id: str, bodies: list[str]) -> list[int]:
    """Send `bodies` one after another, each after the previous ack; their seqs."""
    seqs = []
    for body in bodies:
        client_id = await client.send_message(chat_id, body)
        seqs.append((await client.expect("message.ack", client_id=client_id))["seq"])
    return seqs


async def test_a_client_back_from_away_gets_exactly_the_missed_messages_then_live_ones(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, carol = (await new_account(http, "a"), await new_account(http, "b"), await new_account(http, "c"))
    a, b = await Client.connect(http, alice), await Client.connect(http, bob)
    chat_id = await direct_chat(http, alice, bob)
    await send_all(a, chat_id, ["before-1", "before-2", "before-3"])
    last_seq = (await b.messages(chat_id, 3))[-1]["seq"]
    await b.close()

    assert await send_all(a, chat_id, [f"missed-{i}" for i in range(50)]) == list(range(4, 54))
    c = await Client.connect(http, carol)
    new_chat = await direct_chat(http, carol, bob)  # created while bob was away
    await send_all(c, new_chat, ["hi bob", "are you there?"])

    b = await Client.connect(http, bob)
    await b.send({"type": "resume", "chats": {chat_id: last_seq}})
    live = asyncio.create_task(send_all(a, chat_id, [f"live-{i}" for i in range(20)]))
    frames = await b.until(lambda frame: frame["type"] == "resume.done")
    await live
    done = frames[-1]
    after = await b.messages(chat_id, 20 - sum(1 for f in frames if f.get("body", "").startswith("live-")))

    missed = [f for f in frames if f["type"] == "message.new" and f["chat_id"] == chat_id]
    assert [f["body"] for f in missed[:50]] == [f"missed-{i}" for i in range(50)]
    stream = [f["seq"] for f in missed + after]
    assert stream == list(range(4, 74)), "every message once, in order"
    assert done["chats"][chat_id] >= 53
    assert [f["body"] for f in frames if f["type"] == "message.new" and f["chat_id"] == new_chat] == [
        "hi bob",
        "are you there?",
    ]
    assert any(f["type"] == "chat" and f["chat_id"] == new_chat for f in frames)
    await a.send({"type": "ping", "id": "end"})
    await a.expect("pong")
    await b.send({"type": "ping", "id": "end"})
    tail: list[dict[str, Any]] = await b.until(lambda frame: frame["type"] == "pong")
    assert not [f for f in tail if f["type"] == "message.new"], "no duplicate after the live ones"
    for client in (a, b, c):
        await client.close()


async def test_resume_with_nothing_missed_answers_resume_done_at_once(http: httpx.AsyncClient) -> None:
    alice, bob = await new_account(http, "a"), await new_account(http, "b")
    chat_id = await direct_chat(http, alice, bob)
    b = await Client.connect(http, bob)
    await b.send({"type": "resume", "chats": {chat_id: 0}})
    frames = await b.until(lambda frame: frame["type"] == "resume.done")
    assert [f["type"] for f in frames if f["type"] == "message.new"] == []
    assert frames[-1]["chats"].get(chat_id, 0) == 0
    await b.send({"type": "resume", "chats": {chat_id: 0}})
    await b.expect("resume.done")
    await b.close()


async def test_a_second_resume_while_one_is_in_flight_is_refused_with_an_error(http: httpx.AsyncClient) -> None:
    bob = await new_account(http, "b")
    b = await Client.connect(http, bob)
    await b.send({"type": "resume", "chats": {}})
    await b.send({"type": "resume", "chats": {}})
    frames = await b.until(lambda frame: frame["type"] == "resume.done")
    errors = [f for f in frames if f["type"] == "error"]
    if not errors:  # the first answer came back before the second resume was read: that one is answered too
        await b.expect("resume.done")
    else:
        assert errors[0]["code"] == "resume_in_progress"
    await b.close()
