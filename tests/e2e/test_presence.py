"""Presence through the public surface: WebSocket `presence` frames and `/api/presence`, embedded mode
(in-memory bus and store) over SQLite and PostgreSQL. docs/subsystems/presence.md maps its cases here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from parlour.bootstrap import Overrides
from parlour.common.bus import BusMessage, MessageBus
from parlour.common.bus.instrumented import InstrumentedMessageBus
from parlour.common.contracts import SESSION_EVENTS
from parlour.common.metrics import Metrics
from tests.clients import assert_problem, new_account
from tests.harness import make_settings, running_parlour
from tests.presence import entry_of, known_as_contacts, look_up, seen_as, shows, snapshot
from tests.waiting import eventually
from tests.ws_client import Client, Frame, direct_chat, group_chat

ONLINE_WITHIN = 2.0


async def test_a_contact_is_seen_online_within_two_seconds_and_offline_with_last_seen_when_they_leave(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = await new_account(http, "a"), await new_account(http, "b")
    await direct_chat(http, alice, bob)
    await known_as_contacts(http, alice, bob.user_id)
    a = await Client.connect(http, alice, presence=True)
    first = await snapshot(a)
    assert first[bob.user_id] == {"user_id": bob.user_id, "status": "offline", "last_seen": None}

    connected_at = time.monotonic()
    b = await Client.connect(http, bob, presence=True)
    await seen_as(a, bob.user_id, "online", within=ONLINE_WITHIN)
    assert time.monotonic() - connected_at <= ONLINE_WITHIN

    left_at = datetime.now(UTC)
    await b.close()
    gone = await seen_as(a, bob.user_id, "offline", within=ONLINE_WITHIN)
    last_seen = datetime.fromisoformat(gone["last_seen"])
    assert last_seen.tzinfo is not None
    assert abs((last_seen - left_at).total_seconds()) < ONLINE_WITHIN
    looked_up = await look_up(http, alice, bob.user_id)
    assert looked_up.status_code == 200, looked_up.text
    assert looked_up.json() == {"users": [gone]}
    await a.close()


async def test_two_devices_stay_online_when_one_closes_and_are_away_when_every_one_is_idle(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = await new_account(http, "a"), await new_account(http, "b")
    await direct_chat(http, alice, bob)
    a = await Client.connect(http, alice, presence=True)
    await snapshot(a)
    phone, laptop = await Client.connect(http, bob, presence=True), await Client.connect(http, bob, presence=True)
    await seen_as(a, bob.user_id, "online")
    await phone.close()
    await laptop.send({"type": "activity", "state": "idle"})
    frames = await a.until(lambda frame: shows(frame, bob.user_id, "away"))
    assert not [f for f in frames if shows(f, bob.user_id, "offline")], "one device left: never offline"

    phone = await Client.connect(http, bob, presence=True)
    await seen_as(a, bob.user_id, "online")
    await phone.send({"type": "activity", "state": "idle"})
    away = await seen_as(a, bob.user_id, "away")
    assert away["last_seen"] is None
    await laptop.send({"type": "activity", "state": "active"})
    await seen_as(a, bob.user_id, "online")
    for client in (a, phone, laptop):
        await client.close()


async def test_someone_who_shares_no_chat_hears_nothing_and_is_refused_like_an_unknown_id(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await new_account(http, name) for name in "abc"]
    await direct_chat(http, alice, bob)
    await direct_chat(http, carol, alice)
    c = await Client.connect(http, carol, presence=True)
    assert bob.user_id not in await snapshot(c)
    a = await Client.connect(http, alice, presence=True)
    await snapshot(a)
    b = await Client.connect(http, bob, presence=True)
    await seen_as(a, bob.user_id, "online")
    await b.close()
    await seen_as(a, bob.user_id, "offline")
    await a.close()
    frames = await c.until(lambda frame: shows(frame, alice.user_id, "offline"))
    assert not [f for f in frames if entry_of(f, bob.user_id)], "carol heard nothing of bob"

    stranger = await look_up(http, carol, bob.user_id)
    unknown = await look_up(http, carol, "no-such-user")
    mixed = await http.get(
        "/api/presence", params={"user_ids": f"{alice.user_id},{bob.user_id}"}, headers=carol.headers
    )
    bodies = [assert_problem(response, 404, "user_not_found") for response in (stranger, unknown, mixed)]
    assert {body["detail"] for body in bodies} == {"unknown user"}
    assert {body["type"] for body in bodies} == {"urn:parlour:error:user_not_found"}
    await c.close()


async def test_a_hidden_user_is_seen_offline_without_last_seen_and_again_as_they_are_once_shown(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = await new_account(http, "a"), await new_account(http, "b")
    await direct_chat(http, alice, bob)
    await known_as_contacts(http, alice, bob.user_id)
    assert (await http.get("/api/presence/settings", headers=bob.headers)).json() == {"hidden": False}
    a = await Client.connect(http, alice, presence=True)
    b = await Client.connect(http, bob, presence=True)
    await seen_as(a, bob.user_id, "online")

    hidden = await http.put("/api/presence/settings", json={"hidden": True}, headers=bob.headers)
    assert hidden.status_code == 200, hidden.text
    assert hidden.json() == {"hidden": True}
    assert await seen_as(a, bob.user_id, "offline") == {"user_id": bob.user_id, "status": "offline", "last_seen": None}
    asked = await http.get(
        "/api/presence", params={"user_ids": f"{bob.user_id},{alice.user_id}"}, headers=alice.headers
    )
    assert asked.json()["users"] == [
        {"user_id": bob.user_id, "status": "offline", "last_seen": None},
        {"user_id": alice.user_id, "status": "online", "last_seen": None},
    ]
    himself = await look_up(http, bob, bob.user_id)
    assert himself.json()["users"] == [{"user_id": bob.user_id, "status": "online", "last_seen": None}]
    await b.close()
    b = await Client.connect(http, bob, presence=True)
    assert (await http.get("/api/presence/settings", headers=bob.headers)).json() == {"hidden": True}
    again = await Client.connect(http, alice, presence=True)
    assert (await snapshot(again))[bob.user_id] == {"user_id": bob.user_id, "status": "offline", "last_seen": None}

    shown = await http.put("/api/presence/settings", json={"hidden": False}, headers=bob.headers)
    assert shown.json() == {"hidden": False}
    await seen_as(a, bob.user_id, "online")
    for client in (a, b, again):
        await client.close()


async def test_the_snapshot_after_hello_names_every_contact_once_and_never_oneself(http: httpx.AsyncClient) -> None:
    alice, bob, carol, dan = [await new_account(http, name) for name in "abcd"]
    await group_chat(http, alice, [bob, carol])
    await direct_chat(http, alice, bob)
    await direct_chat(http, carol, dan)
    await known_as_contacts(http, alice, bob.user_id, carol.user_id)
    await known_as_contacts(http, carol, dan.user_id)
    b = await Client.connect(http, bob, presence=True)
    a = await Client.connect(http, alice, presence=True)
    first = await a.recv()
    assert first["type"] == "presence", "presence speaks right after hello"

    # An update about bob (his own connection) may overtake the snapshot; the snapshot names everyone.
    def whole(frame: Frame) -> bool:
        return len(frame.get("users", ())) == 2 and shows(frame, bob.user_id, "online")

    frames = [first] if whole(first) else [first, *await a.until(whole)]
    snapshot_frame = frames[-1]
    assert sorted(entry["user_id"] for entry in snapshot_frame["users"]) == sorted([bob.user_id, carol.user_id])
    assert {entry["user_id"]: entry["status"] for entry in snapshot_frame["users"]} == {
        bob.user_id: "online",
        carol.user_id: "offline",
    }
    assert not [f for f in frames if entry_of(f, alice.user_id) or entry_of(f, dan.user_id)]
    lonely = await Client.connect(http, await new_account(http, "e"), presence=True)
    assert (await lonely.recv()) == {"type": "presence", "users": []}
    for client in (a, b, lonely):
        await client.close()


async def test_a_new_chat_makes_its_members_hear_of_each_other(http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await new_account(http, name) for name in "abc"]
    a, b = await Client.connect(http, alice, presence=True), await Client.connect(http, bob, presence=True)
    await group_chat(http, alice, [bob])
    await seen_as(a, bob.user_id, "online")
    await seen_as(b, alice.user_id, "online")
    chat_id = await group_chat(http, alice, [bob], "second")
    c = await Client.connect(http, carol, presence=True)
    added = await http.post(f"/api/chats/{chat_id}/members", json={"user_id": carol.user_id}, headers=alice.headers)
    assert added.status_code == 200, added.text
    await seen_as(a, carol.user_id, "online")
    await seen_as(c, alice.user_id, "online")
    await seen_as(c, bob.user_id, "online")
    for client in (a, b, c):
        await client.close()


async def test_the_rest_look_up_keeps_the_order_asked_and_refuses_none_or_too_many_ids(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await new_account(http, name) for name in "abc"]
    await group_chat(http, alice, [bob, carol])
    await known_as_contacts(http, alice, bob.user_id, carol.user_id)
    order = [carol.user_id, alice.user_id, bob.user_id, carol.user_id]
    asked = await look_up(http, alice, *order)
    assert [entry["user_id"] for entry in asked.json()["users"]] == order
    for user_ids in ["", ",".join([bob.user_id] * 501), "a,,b", "x" * 65, "a/b"]:
        refused = await look_up(http, alice, user_ids)
        assert_problem(refused, 422, "invalid_input")
    five_hundred = await http.get(
        "/api/presence", params={"user_ids": ",".join([bob.user_id] * 500)}, headers=alice.headers
    )
    assert five_hundred.status_code == 200
    assert_problem(await http.get("/api/presence", params={"user_ids": bob.user_id}), 401, "invalid_token")
    not_a_flag = await http.put("/api/presence/settings", json={"hidden": "yes"}, headers=alice.headers)
    assert_problem(not_a_flag, 422, "invalid_input")


async def test_an_activity_with_an_unknown_state_is_answered_with_an_invalid_frame_error(
    http: httpx.AsyncClient,
) -> None:
    a = await Client.connect(http, await new_account(http, "a"), presence=True)
    await a.send({"type": "activity", "state": "asleep"})
    error = await a.expect("error")
    assert error["code"] == "invalid_frame"
    await a.close()


async def test_the_openapi_document_states_the_presence_routes_as_strictly_as_the_server(
    http: httpx.AsyncClient,
) -> None:
    schema = (await http.get("/openapi.json")).json()
    look_up_route = schema["paths"]["/api/presence"]["get"]
    (user_ids,) = [p for p in look_up_route["parameters"] if p["name"] == "user_ids"]
    assert user_ids["required"] is True
    assert user_ids["schema"]["pattern"] == r"^[A-Za-z0-9_-]{1,64}(,[A-Za-z0-9_-]{1,64}){0,499}$"
    assert user_ids["schema"]["maxLength"] == 500 * 65 - 1
    assert {"200", "404", "default"} <= set(look_up_route["responses"]), "422 is the default problem document"
    settings = schema["components"]["schemas"]["SettingsIn"]
    assert settings["additionalProperties"] is False
    assert settings["properties"]["hidden"]["type"] == "boolean"
    assert settings["required"] == ["hidden"]
    assert set(schema["paths"]["/api/presence/settings"]) == {"get", "put"}


class HeldSessionEvents(InstrumentedMessageBus):
    """The process's bus, except that the gateway's session events wait while `gate` is shut."""

    def __init__(self, inner: MessageBus) -> None:
        super().__init__(inner, Metrics())
        self.gate = asyncio.Event()
        self.gate.set()
        self.holding = asyncio.Event()  # a publication of session events waits at the shut gate

    async def publish(self, routing_keys: Sequence[str], message: BusMessage) -> None:
        if message.type == SESSION_EVENTS and not self.gate.is_set():
            self.holding.set()
            await self.gate.wait()
        await super().publish(routing_keys, message)


async def test_hello_does_not_wait_for_the_opening_and_an_activity_right_after_it_is_not_lost(
    database_url: str, tmp_path: Path
) -> None:
    buses: list[HeldSessionEvents] = []

    def hold(bus: MessageBus) -> MessageBus:
        buses.append(HeldSessionEvents(bus))
        return buses[-1]

    async def status_of_bob() -> str:
        response = await look_up(http, alice, bob.user_id)
        assert response.status_code == 200, response.text
        status: str = response.json()["users"][0]["status"]
        return status

    settings = make_settings(tmp_path, database_url)
    async with (
        running_parlour(settings, overrides=Overrides(migrate=True, wrap_bus=hold)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        (held,) = buses
        # Alice asks over REST only (no socket of hers: nothing is delivered to anyone while the gate is shut).
        alice, bob = await new_account(http, "a"), await new_account(http, "b")
        await direct_chat(http, alice, bob)
        await known_as_contacts(http, alice, bob.user_id)
        held.gate.clear()
        try:
            b = await Client.connect(http, bob, presence=True)
            await asyncio.wait_for(held.holding.wait(), 10)
            await b.send({"type": "ping", "id": "while-held"})  # the session reads and answers meanwhile
            assert (await b.take(lambda frame: frame["type"] == "pong", within=5.0))["id"] == "while-held"
            await b.send({"type": "activity", "state": "idle"})  # waits at the gateway for the opening
            assert await status_of_bob() == "offline"
        finally:
            held.gate.set()

        async def away() -> bool:
            return await status_of_bob() == "away"  # stays "online" if the activity overtook the opening

        await eventually(away, within=10.0, what="Bob away: his activity applied after his opening")
        await b.close()
