"""The notifications settings and mutes over HTTP, embedded mode over SQLite and PostgreSQL
(docs/subsystems/notifications.md, "REST")."""

from __future__ import annotations

import httpx

from tests.clients import assert_problem, new_account
from tests.notifications import mute
from tests.ws_client import group_chat


async def test_the_preview_is_on_until_turned_off_and_the_setting_is_checked(http: httpx.AsyncClient) -> None:
    ada = await new_account(http, "a")
    got = await http.get("/api/notifications/settings", headers=ada.headers)
    assert got.status_code == 200, got.text
    assert got.json() == {"preview": True}
    put = await http.put("/api/notifications/settings", json={"preview": False}, headers=ada.headers)
    assert put.status_code == 200, put.text
    assert (await http.get("/api/notifications/settings", headers=ada.headers)).json() == {"preview": False}
    bad = await http.put("/api/notifications/settings", json={"preview": "no"}, headers=ada.headers)
    assert_problem(bad, 422, "invalid_input")
    assert_problem(await http.get("/api/notifications/settings"), 401, "invalid_token")


async def test_a_member_mutes_a_new_chat_at_once_and_a_stranger_cannot_tell_it_exists(http: httpx.AsyncClient) -> None:
    ada, bob, eve = [await new_account(http, name) for name in ("a", "b", "e")]
    chat_id = await group_chat(http, ada, [bob], title="Team")
    muted = await mute(http, bob, chat_id)  # right after the creation: before notifications heard of it
    assert muted.status_code == 200, muted.text
    assert muted.json() == {"chat_id": chat_id, "muted": True}
    again = await http.put(f"/api/notifications/mutes/{chat_id}", headers=bob.headers)
    assert again.status_code == 200, again.text
    assert (await http.get("/api/notifications/mutes", headers=bob.headers)).json() == {"chat_ids": [chat_id]}
    stranger = await mute(http, eve, chat_id)
    nowhere = await mute(http, eve, "no-such-chat")
    assert (stranger.status_code, nowhere.status_code) == (200, 200)
    assert (stranger.json()["muted"], nowhere.json()["muted"]) == (True, True)
    unmuted = await http.delete(f"/api/notifications/mutes/{chat_id}", headers=bob.headers)
    assert unmuted.json() == {"chat_id": chat_id, "muted": False}
    assert (await http.get("/api/notifications/mutes", headers=bob.headers)).json() == {"chat_ids": []}
    assert_problem(await http.put("/api/notifications/mutes/bad%20id", headers=bob.headers), 422, "invalid_input")


async def test_the_routes_are_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert {"get", "put"} <= set(paths["/api/notifications/settings"])
    assert "get" in paths["/api/notifications/mutes"]
    assert {"put", "delete"} <= set(paths["/api/notifications/mutes/{chat_id}"])
