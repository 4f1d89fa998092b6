"""Auth through real HTTP: sign-up, login, refresh rotation and reuse detection, logout, lookups."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx

from tests.clients import PASSWORD, assert_problem, log_in, new_account, sign_up, unique_username
from tests.e2e.test_avatars import picture
from tests.harness import make_settings, running_parlour
from tests.waiting import eventually
from tests.ws_client import direct_chat


async def test_sign_up_returns_the_user_with_a_canonical_username(http: httpx.AsyncClient) -> None:
    name = unique_username("Ada_")
    response = await http.post("/auth/users", json={"username": name, "password": PASSWORD, "display_name": " Ada "})
    assert response.status_code == 201
    user = response.json()
    assert user["username"] == name.lower()
    assert user["display_name"] == "Ada"
    assert set(user) == {"id", "username", "display_name", "created_at", "deleted", "avatar_url"}
    assert user["deleted"] is False


async def test_usernames_are_unique_regardless_of_case(http: httpx.AsyncClient) -> None:
    name = unique_username("dup")
    await sign_up(http, name)
    response = await http.post("/auth/users", json={"username": name.upper(), "password": PASSWORD})
    assert_problem(response, 409, "username_taken")


async def test_concurrent_sign_ups_of_one_name_create_one_user(http: httpx.AsyncClient) -> None:
    name = unique_username("race")
    responses = await asyncio.gather(
        *(http.post("/auth/users", json={"username": name, "password": PASSWORD}) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]


async def test_bad_usernames_and_passwords_are_refused_with_a_reason(http: httpx.AsyncClient) -> None:
    for username in ["ab", "x" * 33, "has space", "émile", "semi;colon"]:
        response = await http.post("/auth/users", json={"username": username, "password": PASSWORD})
        assert_problem(response, 422, "username_invalid")
    for password in ["short", "a" * 12, "p" * 129]:
        response = await http.post("/auth/users", json={"username": unique_username(), "password": password})
        assert_problem(response, 422, "password_invalid")
    response = await http.post("/auth/users", json={"username": unique_username()})
    body = assert_problem(response, 422, "invalid_input")
    assert body["errors"][0]["location"] == ["body", "password"]


async def test_login_gives_a_bearer_pair_that_identifies_the_user(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    pair = await log_in(http, account.username.upper())
    assert pair["token_type"] == "Bearer"
    assert 0 < pair["expires_in"] <= 900
    me = await http.get("/auth/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == account.user_id


async def test_unknown_user_and_wrong_password_get_the_same_answer(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    wrong_password = await http.post("/auth/sessions", json={"username": account.username, "password": "nope" * 3})
    unknown_user = await http.post("/auth/sessions", json={"username": unique_username(), "password": PASSWORD})
    bodies = [assert_problem(r, 401, "invalid_credentials") for r in (wrong_password, unknown_user)]
    for body in bodies:
        body.pop("request_id")
    assert bodies[0] == bodies[1]


async def test_refresh_rotates_the_pair(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    response = await http.post("/auth/sessions/refresh", json={"refresh_token": account.refresh_token})
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["refresh_token"] != account.refresh_token
    assert rotated["access_token"] != account.access_token
    again = await http.post("/auth/sessions/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert again.status_code == 200


async def test_a_reused_refresh_token_revokes_the_whole_session(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    first = await http.post("/auth/sessions/refresh", json={"refresh_token": account.refresh_token})
    successor = first.json()["refresh_token"]
    replay = await http.post("/auth/sessions/refresh", json={"refresh_token": account.refresh_token})
    assert_problem(replay, 401, "refresh_token_reused")
    after = await http.post("/auth/sessions/refresh", json={"refresh_token": successor})
    assert_problem(after, 401, "session_revoked")


async def test_concurrent_refreshes_of_one_token_let_at_most_one_through(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    responses = await asyncio.gather(
        *(http.post("/auth/sessions/refresh", json={"refresh_token": account.refresh_token}) for _ in range(4))
    )
    assert [r.status_code for r in responses].count(200) <= 1
    assert all(r.status_code in {200, 401} for r in responses)


async def test_unknown_refresh_token_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/auth/sessions/refresh", json={"refresh_token": "not-a-token"})
    assert_problem(response, 401, "invalid_refresh_token")


async def test_logout_ends_the_current_session_only(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    other = await log_in(http, account.username)
    response = await http.delete("/auth/sessions/current", headers=account.headers)
    assert response.status_code == 204
    refused = await http.post("/auth/sessions/refresh", json={"refresh_token": account.refresh_token})
    assert_problem(refused, 401, "session_revoked")
    still = await http.post("/auth/sessions/refresh", json={"refresh_token": other["refresh_token"]})
    assert still.status_code == 200


async def test_logout_everywhere_ends_every_session(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    second = await log_in(http, account.username)
    response = await http.delete("/auth/sessions", headers=account.headers)
    assert response.status_code == 204
    for token in (account.refresh_token, second["refresh_token"]):
        refused = await http.post("/auth/sessions/refresh", json={"refresh_token": token})
        assert_problem(refused, 401, "session_revoked")


async def test_search_finds_users_by_prefix_for_authenticated_callers(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    prefix = unique_username("find_")
    names = sorted(f"{prefix}{i}" for i in range(3))
    for name in names:
        await sign_up(http, name)
    response = await http.get("/auth/users", params={"q": prefix.upper()}, headers=account.headers)
    assert response.status_code == 200
    assert [user["username"] for user in response.json()["items"]] == names
    # "_" is literal, not a LIKE wildcard.
    wildcard = await http.get("/auth/users", params={"q": prefix.replace("_", "x")}, headers=account.headers)
    assert wildcard.json()["items"] == []
    capped = await http.get("/auth/users", params={"q": prefix, "limit": 2}, headers=account.headers)
    assert len(capped.json()["items"]) == 2
    too_many = await http.get("/auth/users", params={"q": prefix, "limit": 500}, headers=account.headers)
    assert_problem(too_many, 422, "invalid_input")
    anonymous = await http.get("/auth/users", params={"q": prefix})
    assert_problem(anonymous, 401, "invalid_token")


async def test_login_attempts_are_rate_limited_per_username_and_address(http: httpx.AsyncClient) -> None:
    account = await new_account(http)  # counted: 1 attempt (limit is 5 in these tests)
    for _ in range(4):
        await http.post("/auth/sessions", json={"username": account.username, "password": "wrong-password"})
    response = await http.post("/auth/sessions", json={"username": account.username, "password": PASSWORD})
    assert_problem(response, 429, "too_many_login_attempts")
    assert int(response.headers["retry-after"]) >= 1


async def test_login_attempts_are_rate_limited_per_client_address(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None, login_attempts_per_address=3)
    async with running_parlour(settings, ["auth"]) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(3):
            attempt = {"username": unique_username(), "password": PASSWORD}
            assert_problem(await client.post("/auth/sessions", json=attempt), 401, "invalid_credentials")
        attempt = {"username": unique_username(), "password": PASSWORD}
        refused = assert_problem(await client.post("/auth/sessions", json=attempt), 429, "too_many_login_attempts")
        assert refused["retry_after"] >= 1


def _client_from(base_url: str, address: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any of 127.0.0.0/8 is this machine)."""
    return httpx.AsyncClient(base_url=base_url, transport=httpx.AsyncHTTPTransport(local_address=address))


async def test_failed_logins_slow_a_username_down_but_never_lock_its_owner_out(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        None,
        login_attempts_per_username_and_address=3,
        login_failures_before_delay=1,
        login_delay_seconds=0.2,
    )
    async with (
        running_parlour(settings, ["auth"]) as base_url,
        _client_from(base_url, "127.0.0.1") as attacker,
        _client_from(base_url, "127.0.0.2") as owner,
    ):
        account = await sign_up(attacker, unique_username())
        wrong = {"username": account["username"], "password": "wrong-password"}
        for _ in range(3):
            assert_problem(await attacker.post("/auth/sessions", json=wrong), 401, "invalid_credentials")
        right = {"username": account["username"], "password": PASSWORD}
        assert_problem(await attacker.post("/auth/sessions", json=right), 429, "too_many_login_attempts")
        started = time.monotonic()
        response = await owner.post("/auth/sessions", json=right)
        assert response.status_code == 200, response.text
        assert time.monotonic() - started >= 0.4  # 3 failures, 1 free: 0.2 s doubled once


async def test_forwarded_headers_from_a_direct_client_do_not_change_its_address(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None, login_attempts_per_address=2)
    async with running_parlour(settings, ["auth"]) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(2):
            attempt = {"username": unique_username(), "password": PASSWORD}
            assert_problem(await client.post("/auth/sessions", json=attempt), 401, "invalid_credentials")
        for forwarded in ("203.0.113.7", "198.51.100.1, 127.0.0.1"):
            attempt = {"username": unique_username(), "password": PASSWORD}
            response = await client.post("/auth/sessions", json=attempt, headers={"X-Forwarded-For": forwarded})
            assert_problem(response, 429, "too_many_login_attempts")


async def test_forwarded_headers_from_a_configured_proxy_name_the_client(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None, login_attempts_per_address=2, trusted_proxies=["127.0.0.0/8"])
    async with running_parlour(settings, ["auth"]) as base_url, httpx.AsyncClient(base_url=base_url) as proxy:
        for _ in range(2):
            attempt = {"username": unique_username(), "password": PASSWORD}
            response = await proxy.post("/auth/sessions", json=attempt, headers={"X-Forwarded-For": "203.0.113.7"})
            assert_problem(response, 401, "invalid_credentials")
        attempt = {"username": unique_username(), "password": PASSWORD}
        limited = await proxy.post("/auth/sessions", json=attempt, headers={"X-Forwarded-For": "203.0.113.7"})
        assert_problem(limited, 429, "too_many_login_attempts")
        other = await proxy.post("/auth/sessions", json=attempt, headers={"X-Forwarded-For": "203.0.113.8"})
        assert_problem(other, 401, "invalid_credentials")


async def test_i_change_my_display_name_and_everyone_looks_me_up_by_it(http: httpx.AsyncClient) -> None:
    me, other = await new_account(http, "ren"), await new_account(http, "oth")
    response = await http.patch("/auth/users/me", json={"display_name": "  Ada\u0301 Lovelace "}, headers=me.headers)
    assert response.status_code == 200
    assert response.json()["display_name"] == "Adá Lovelace", "trimmed and NFC, as at sign-up"
    for path, headers in ((f"/auth/users/{me.user_id}", other.headers), ("/auth/users/me", me.headers)):
        assert (await http.get(path, headers=headers)).json()["display_name"] == "Adá Lovelace"

    for bad in ("", "   ", "x" * 65, "tab\there"):
        refused = await http.patch("/auth/users/me", json={"display_name": bad}, headers=me.headers)
        assert_problem(refused, 422, "display_name_invalid")
    for unparsed in ({"display_name": "y" * 257}, {}, {"display_name": None}):
        assert_problem(await http.patch("/auth/users/me", json=unparsed, headers=me.headers), 422, "invalid_input")
    assert_problem(await http.patch("/auth/users/me", json={"display_name": "Eve"}), 401, "invalid_token")
    assert (await http.get("/auth/users/me", headers=me.headers)).json()["display_name"] == "Adá Lovelace"


COOKIE_MODE = {"X-Parlour-Refresh": "cookie"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Safari/604.1"


def refresh_cookie(response: httpx.Response) -> str:
    """The `parlour_refresh` value a response sets, after checking how the cookie is scoped."""
    (header,) = [value for value in response.headers.get_list("set-cookie") if value.startswith("parlour_refresh=")]
    attributes = {part.strip().split("=", 1)[0].lower(): part.strip() for part in header.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes.keys(), header
    assert attributes["path"] == "Path=/auth/sessions"
    assert attributes["samesite"].lower() == "samesite=strict"
    assert "secure" not in attributes, "plain http here: a Secure cookie would never come back"
    return header.split(";", 1)[0].split("=", 1)[1]


async def cookie_refresh(http: httpx.AsyncClient, token: str, mode: dict[str, str] = COOKIE_MODE) -> httpx.Response:
    http.cookies.clear()  # only the cookie this test names travels
    response = await http.post("/auth/sessions/refresh", headers={**mode, "Cookie": f"parlour_refresh={token}"})
    http.cookies.clear()
    return response


async def test_in_cookie_mode_the_refresh_token_travels_only_as_an_httponly_strict_cookie(
    http: httpx.AsyncClient,
) -> None:
    account = await new_account(http)
    login = await http.post(
        "/auth/sessions", json={"username": account.username, "password": PASSWORD}, headers=COOKIE_MODE
    )
    assert login.status_code == 200
    assert login.json()["refresh_token"] is None, "script on the page never sees it"
    first = refresh_cookie(login)

    rotated = await cookie_refresh(http, first)
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] is None
    second = refresh_cookie(rotated)
    assert second != first
    me = await http.get("/auth/users/me", headers={"Authorization": f"Bearer {rotated.json()['access_token']}"})
    assert me.json()["id"] == account.user_id

    # Without the header a request cannot use the cookie: a cross-site form could send the cookie, not it.
    assert_problem(await cookie_refresh(http, second, mode={}), 401, "invalid_refresh_token")
    assert_problem(await cookie_refresh(http, first), 401, "refresh_token_reused")
    assert_problem(await cookie_refresh(http, second), 401, "session_revoked")
    http.cookies.clear()
    assert_problem(await http.post("/auth/sessions/refresh", headers=COOKIE_MODE), 401, "invalid_refresh_token")


async def test_logging_out_clears_the_refresh_cookie(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    for path in ("/auth/sessions/current", "/auth/sessions"):
        pair = await log_in(http, account.username)
        response = await http.delete(path, headers={"Authorization": f"Bearer {pair['access_token']}"})
        assert response.status_code == 204
        (cleared,) = response.headers.get_list("set-cookie")
        assert cleared.startswith('parlour_refresh=""') or cleared.startswith("parlour_refresh=;"), cleared
        assert "max-age=0" in cleared.lower()
        assert "path=/auth/sessions" in cleared.lower()


async def test_i_see_my_sessions_by_device_and_end_one_of_them(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    laptop = await http.post(
        "/auth/sessions",
        json={"username": account.username, "password": PASSWORD},
        headers={"User-Agent": FIREFOX},
    )
    phone = await http.post(
        "/auth/sessions", json={"username": account.username, "password": PASSWORD}, headers={"User-Agent": PHONE}
    )
    laptop_headers = {"Authorization": f"Bearer {laptop.json()['access_token']}"}
    listed = await http.get("/auth/sessions", headers=laptop_headers)
    assert listed.status_code == 200
    items = listed.json()["items"]
    devices = [item["device"] for item in items]
    assert devices[:2] == ["Safari on iPhone", "Firefox on Linux"]
    assert devices[2].startswith("python-httpx/"), "a program is named by its own token"
    assert [item["current"] for item in items] == [False, True, False]
    assert all(item["last_used_at"] is not None for item in items)

    phone_id = items[0]["id"]
    assert (await http.delete(f"/auth/sessions/{phone_id}", headers=laptop_headers)).status_code == 204
    refused = await http.post("/auth/sessions/refresh", json={"refresh_token": phone.json()["refresh_token"]})
    assert_problem(refused, 401, "session_revoked")
    phone_headers = {"Authorization": f"Bearer {phone.json()['access_token']}"}
    assert_problem(await http.get("/auth/users/me", headers=phone_headers), 401, "session_revoked")
    left = (await http.get("/auth/sessions", headers=laptop_headers)).json()["items"]
    assert [item["id"] for item in left] == [item["id"] for item in items[1:]]

    stranger = await new_account(http)
    mine = await http.delete(f"/auth/sessions/{left[0]['id']}", headers=stranger.headers)
    assert_problem(mine, 404, "session_not_found")
    for session_id in (str(uuid.uuid4()), "not-a-session", "x" * 65):
        response = await http.delete(f"/auth/sessions/{session_id}", headers=stranger.headers)
        assert response.status_code == 404, response.text
    assert len((await http.get("/auth/sessions", headers=laptop_headers)).json()["items"]) == 2
    assert_problem(await http.get("/auth/sessions"), 401, "invalid_token")


async def test_ending_my_other_sessions_keeps_this_one(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    others = [await log_in(http, account.username) for _ in range(2)]
    assert (await http.delete("/auth/sessions/others", headers=account.headers)).status_code == 204
    for pair in others:
        refused = await http.post("/auth/sessions/refresh", json={"refresh_token": pair["refresh_token"]})
        assert_problem(refused, 401, "session_revoked")
    still = await http.post("/auth/sessions/refresh", json={"refresh_token": account.refresh_token})
    assert still.status_code == 200
    items = await http.get("/auth/sessions", headers={"Authorization": f"Bearer {still.json()['access_token']}"})
    assert [item["current"] for item in items.json()["items"]] == [True]


async def test_changing_my_password_ends_my_other_sessions_and_only_the_new_one_logs_in(
    http: httpx.AsyncClient,
) -> None:
    account = await new_account(http)
    other = await log_in(http, account.username)
    new_password = "a-new-password-1"
    path = "/auth/users/me/password"

    wrong = await http.put(
        path, json={"current_password": "not-the-password", "new_password": new_password}, headers=account.headers
    )
    assert_problem(wrong, 403, "wrong_password")
    weak = await http.put(path, json={"current_password": PASSWORD, "new_password": "short"}, headers=account.headers)
    assert_problem(weak, 422, "password_invalid")
    assert_problem(
        await http.put(path, json={"new_password": new_password}, headers=account.headers), 422, "invalid_input"
    )
    assert (
        await http.post("/auth/sessions/refresh", json={"refresh_token": other["refresh_token"]})
    ).status_code == 200

    other = await log_in(http, account.username)
    changed = await http.put(
        path, json={"current_password": PASSWORD, "new_password": new_password}, headers=account.headers
    )
    assert changed.status_code == 204
    refused = await http.post("/auth/sessions/refresh", json={"refresh_token": other["refresh_token"]})
    assert_problem(refused, 401, "session_revoked")
    assert (await http.get("/auth/users/me", headers=account.headers)).status_code == 200, "this session stays"
    old = await http.post("/auth/sessions", json={"username": account.username, "password": PASSWORD})
    assert_problem(old, 401, "invalid_credentials")
    assert (await log_in(http, account.username, new_password))["access_token"]


async def test_deleting_my_account_keeps_my_messages_under_deleted_user_and_my_username_reserved(
    http: httpx.AsyncClient,
) -> None:
    ada, bob = await new_account(http, "del"), await new_account(http, "bob")
    chat_id = await direct_chat(http, ada, bob)
    sent = await http.post(f"/api/chats/{chat_id}/messages", json={"body": "goodbye"}, headers=ada.headers)
    assert sent.status_code == 201, sent.text
    uploaded = await http.put(
        "/auth/users/me/avatar", content=picture("PNG"), headers={**ada.headers, "Content-Type": "image/png"}
    )
    assert uploaded.json()["avatar_url"] is not None

    wrong = await http.request("DELETE", "/auth/users/me", json={"password": "not-my-password"}, headers=ada.headers)
    assert_problem(wrong, 403, "wrong_password")
    assert_problem(await http.request("DELETE", "/auth/users/me", headers=ada.headers), 422, "invalid_input")
    assert (await http.get("/auth/users/me", headers=ada.headers)).json()["deleted"] is False

    deleted = await http.request("DELETE", "/auth/users/me", json={"password": PASSWORD}, headers=ada.headers)
    assert deleted.status_code == 204
    assert "max-age=0" in deleted.headers["set-cookie"].lower()

    assert_problem(await http.get("/auth/users/me", headers=ada.headers), 401, "session_revoked")
    refused = await http.post("/auth/sessions/refresh", json={"refresh_token": ada.refresh_token})
    assert_problem(refused, 401, "session_revoked")
    login = await http.post("/auth/sessions", json={"username": ada.username, "password": PASSWORD})
    assert_problem(login, 401, "invalid_credentials")
    again = await http.post("/auth/users", json={"username": ada.username, "password": PASSWORD})
    assert_problem(again, 409, "username_taken")

    seen = (await http.get(f"/auth/users/{ada.user_id}", headers=bob.headers)).json()
    assert (seen["display_name"], seen["username"], seen["deleted"]) == ("Deleted user", ada.username, True)
    assert seen["avatar_url"] is None
    assert_problem(await http.get(f"/auth/users/{ada.user_id}/avatar"), 404, "not_found")
    found = await http.get("/auth/users", params={"q": ada.username}, headers=bob.headers)
    assert found.json()["items"] == []
    history = (await http.get(f"/api/chats/{chat_id}/messages", headers=bob.headers)).json()["items"]
    assert [(m["sender_id"], m["body"]) for m in history] == [(ada.user_id, "goodbye")]

    async def nobody_can_add_ada() -> bool:
        body = {"kind": "group", "title": "without ada", "member_ids": [ada.user_id]}
        response = await http.post("/api/chats", json=body, headers=bob.headers)
        assert response.status_code in {201, 422}, response.text
        return response.status_code == 422 and response.json()["code"] == "user_unknown"

    await eventually(nobody_can_add_ada)  # once messaging has heard `user.deleted`
