"""A session that ends (logout, logout everywhere, refresh-token reuse) ends everywhere, within a second.

Its access tokens stop working on every REST route and for new passes, a pass issued before it ended is
refused, and its open WebSockets close with 4004 (docs/protocol.md). Other sessions of the user go on.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.clients import Account, assert_problem, log_in, new_account
from tests.harness import make_settings, running_parlour
from tests.waiting import eventually
from tests.ws_client import Client, direct_chat, get_pass, refused

SESSION_REVOKED = 4004
PASS_REJECTED = 4401
WITHIN = 1.5  # "known to every process within a second", plus the time to write the close


def _account_of(account: Account, pair: dict[str, str]) -> Account:
    return Account(account.user_id, account.username, pair["access_token"], pair["refresh_token"])


async def _refused_everywhere(http: httpx.AsyncClient, account: Account) -> None:
    for response in (
        await http.get("/auth/users/me", headers=account.headers),
        await http.get("/api/chats", headers=account.headers),
        await http.post("/gateway/passes", headers=account.headers),
    ):
        assert_problem(response, 401, "session_revoked")


async def test_a_logged_out_access_token_is_refused_on_rest_and_for_passes(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    other = _account_of(account, await log_in(http, account.username))
    assert (await http.delete("/auth/sessions/current", headers=account.headers)).status_code == 204
    await _refused_everywhere(http, account)
    assert (await http.get("/auth/users/me", headers=other.headers)).status_code == 200


async def test_logout_everywhere_refuses_every_sessions_access_tokens(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    other = _account_of(account, await log_in(http, account.username))
    assert (await http.delete("/auth/sessions", headers=other.headers)).status_code == 204
    for ended in (account, other):
        await _refused_everywhere(http, ended)


async def test_refresh_token_reuse_refuses_the_sessions_access_tokens(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    rotated = (await http.post("/auth/sessions/refresh", json={"refresh_token": account.refresh_token})).json()
    replay = await http.post("/auth/sessions/refresh", json={"refresh_token": account.refresh_token})
    assert_problem(replay, 401, "refresh_token_reused")
    await _refused_everywhere(http, account)
    await _refused_everywhere(http, _account_of(account, rotated))


async def test_a_pass_issued_before_the_logout_is_refused(http: httpx.AsyncClient) -> None:
    account = await new_account(http)
    secret = await get_pass(http, account)
    assert (await http.delete("/auth/sessions/current", headers=account.headers)).status_code == 204
    code, _ = await refused(http, secret)
    assert code == PASS_REJECTED


async def test_an_open_socket_of_a_logged_out_session_closes_with_4004_and_others_stay(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = await new_account(http), await new_account(http)
    alice_elsewhere = _account_of(alice, await log_in(http, alice.username))
    chat_id = await direct_chat(http, bob, alice)
    ended, kept = await Client.connect(http, alice), await Client.connect(http, alice_elsewhere)
    try:
        logged_out_at = time.monotonic()
        assert (await http.delete("/auth/sessions/current", headers=alice.headers)).status_code == 204
        code, reason = await ended.closed(within=WITHIN)
        assert (code, reason) == (SESSION_REVOKED, "session_revoked")
        assert time.monotonic() - logged_out_at < WITHIN
        sent = await http.post(f"/api/chats/{chat_id}/messages", json={"body": "still here?"}, headers=bob.headers)
        assert sent.status_code == 201
        assert (await kept.expect("message.new", chat_id=chat_id))["body"] == "still here?"
    finally:
        await ended.close()
        await kept.close()


async def test_logout_everywhere_closes_every_socket_of_the_user(http: httpx.AsyncClient) -> None:
    alice = await new_account(http)
    second = _account_of(alice, await log_in(http, alice.username))
    sockets = [await Client.connect(http, alice), await Client.connect(http, second)]
    try:
        assert (await http.delete("/auth/sessions", headers=alice.headers)).status_code == 204
        for socket in sockets:
            assert (await socket.closed(within=WITHIN))[0] == SESSION_REVOKED
    finally:
        for socket in sockets:
            await socket.close()


async def test_a_logout_outlives_a_restart_that_empties_the_key_value_store(database_url: str, tmp_path: Path) -> None:
    # Found reading what the chaos suite's Redis restart (no persistence) does: revocations live in the key-value
    # store only, so a restart used to make every logged-out access token good again until it expired.
    # Here the embedded process restarts (its in-memory store starts empty), over the same database.
    settings = make_settings(tmp_path, database_url)
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        account = await new_account(http)
        assert (await http.delete("/auth/sessions/current", headers=account.headers)).status_code == 204
        await _refused_everywhere(http, account)
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:

        async def refused() -> bool:
            response = await http.get("/auth/users/me", headers=account.headers)
            return response.status_code == 401

        await eventually(refused, within=WITHIN, what="the logged-out token refused again")
        await _refused_everywhere(http, account)
