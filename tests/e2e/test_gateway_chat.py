"""Two people chat through the gateway: passes, WebSocket, messaging over the in-process bus."""

from __future__ import annotations

import asyncio

import httpx

from tests.clients import new_account
from tests.ws_client import Client, direct_chat, group_chat


async def test_a_sends_b_receives_message_new_and_a_gets_the_ack_with_seq(http: httpx.AsyncClient) -> None:
    alice, bob = await new_account(http, "a"), await new_account(http, "b")
    a, b = await Client.connect(http, alice), await Client.connect(http, bob)
    chat_id = await direct_chat(http, alice, bob)
    client_id = await a.send_message(chat_id, "hello bob")
    ack = await a.expect("message.ack", client_id=client_id)
    (received,) = await b.messages(chat_id, 1)
    assert ack["chat_id"] == chat_id
    assert ack["seq"] == 1
    assert received["seq"] == 1
    assert received["body"] == "hello bob"
    assert received["sender_id"] == alice.user_id
    assert received["message_id"] == ack["message_id"]
    await a.close()
    await b.close()


async def test_every_session_of_a_user_gets_the_message_and_only_the_sending_one_the_ack(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = await new_account(http, "a"), await new_account(http, "b")
    phone, laptop = await Client.connect(http, alice), await Client.connect(http, alice)
    b = await Client.connect(http, bob)
    chat_id = await direct_chat(http, alice, bob)
    client_id = await phone.send_message(chat_id, "from my phone")
    await phone.expect("message.ack", client_id=client_id)
    for client in (phone, laptop, b):
        (frame,) = await client.messages(chat_id, 1)
        assert frame["body"] == "from my phone"
    await laptop.send({"type": "ping", "id": "after"})
    frames = await laptop.until(lambda frame: frame["type"] == "pong")
    assert not [frame for frame in frames if frame["type"] == "message.ack"]
    for client in (phone, laptop, b):
        await client.close()


async def test_a_group_sees_every_message_in_the_same_order(http: httpx.AsyncClient) -> None:
    accounts = [await new_account(http, f"g{i}") for i in range(3)]
    clients = [await Client.connect(http, account, batch=True) for account in accounts]
    chat_id = await group_chat(http, accounts[0], accounts[1:])
    await asyncio.gather(
        *(client.send_message(chat_id, f"{n}-{i}") for n, client in enumerate(clients) for i in range(10))
    )
    orders = [[(frame["seq"], frame["body"]) for frame in await client.messages(chat_id, 30)] for client in clients]
    assert orders[0] == orders[1] == orders[2]
    assert [seq for seq, _ in orders[0]] == list(range(1, 31))
    for client in clients:
        await client.close()


async def test_the_sender_id_comes_from_the_connection_never_from_the_frame(http: httpx.AsyncClient) -> None:
    alice, bob = await new_account(http, "a"), await new_account(http, "b")
    a, b = await Client.connect(http, alice), await Client.connect(http, bob)
    chat_id = await direct_chat(http, alice, bob)
    forged = {"sender_id": bob.user_id, "user_id": bob.user_id, "session_id": b.session_id}
    await a.send({"type": "message.send", "chat_id": chat_id, "client_id": "k1", "body": "it was bob", **forged})
    (received,) = await b.messages(chat_id, 1)
    assert received["sender_id"] == alice.user_id
    await a.expect("message.ack", client_id="k1")
    await a.close()
    await b.close()


async def test_a_user_cannot_send_into_a_chat_they_are_not_in(http: httpx.AsyncClient) -> None:
    alice, bob, mallory = [await new_account(http, prefix) for prefix in "abm"]
    chat_id = await direct_chat(http, alice, bob)
    m = await Client.connect(http, mallory)
    await m.send_message(chat_id, "let me in", "k1")
    rejected = await m.expect("message.rejected", client_id="k1")
    assert rejected["code"]
    await m.close()


async def _send_three_times(client: Client, chat_id: str, client_id: str) -> list[int]:
    for _ in range(3):
        await client.send({"type": "message.send", "chat_id": chat_id, "client_id": client_id, "body": "once"})
    return [(await client.expect("message.ack", client_id=client_id))["seq"] for _ in range(3)]


async def test_one_client_id_sent_three_times_and_again_after_a_reconnect_reaches_the_others_once(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await new_account(http, name) for name in ("a", "b", "c")]
    chat_id = await group_chat(http, alice, [bob, carol])
    b, c = await Client.connect(http, bob, batch=True), await Client.connect(http, carol)
    a = await Client.connect(http, alice)
    assert await _send_three_times(a, chat_id, "k-once") == [1, 1, 1]
    await a.close()
    a = await Client.connect(http, alice)
    assert await _send_three_times(a, chat_id, "k-once") == [1, 1, 1]
    await a.send_message(chat_id, "next")  # a marker: everything before it has been delivered
    for member in (b, c):
        frames = await member.until(lambda frame: frame.get("body") == "next")
        delivered = [frame["seq"] for frame in frames if frame["type"] == "message.new"]
        assert delivered == [1, 2], "the repeated client id reached the other members exactly once"
    for client in (a, b, c):
        await client.close()
