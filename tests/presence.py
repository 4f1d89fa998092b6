"""Reading `presence` frames as a client does (docs/protocol.md, "presence")."""

from __future__ import annotations

from typing import Any

import httpx

from tests.clients import Account
from tests.waiting import eventually
from tests.ws_client import Client, Frame

PRESENCE = "presence"


def entry_of(frame: Frame, user_id: str) -> dict[str, Any] | None:
    """The user's entry in a `presence` frame, if it names them."""
    if frame["type"] != PRESENCE:
        return None
    return next((entry for entry in frame["users"] if entry["user_id"] == user_id), None)


def shows(frame: Frame, user_id: str, status: str) -> bool:
    """Whether the frame is a `presence` frame showing the user with this status."""
    entry = entry_of(frame, user_id)
    return entry is not None and entry["status"] == status


async def seen_as(client: Client, user_id: str, status: str, within: float = 10.0) -> dict[str, Any]:
    """Read frames until one shows the user with `status` (those before it are read and dropped: what the
    user looked like before does not count); their entry."""
    frames = await client.until(lambda f: shows(f, user_id, status), within)
    entry = entry_of(frames[-1], user_id)
    assert entry is not None
    return entry


async def snapshot(client: Client, within: float = 10.0) -> dict[str, dict[str, Any]]:
    """The first `presence` frame after `hello` (the snapshot), by user id."""
    frame = await client.take(lambda f: f["type"] == PRESENCE, within)
    return {entry["user_id"]: entry for entry in frame["users"]}


async def look_up(http: httpx.AsyncClient, account: Account, *user_ids: str) -> httpx.Response:
    """`GET /api/presence?user_ids=…` as `account`."""
    return await http.get("/api/presence", params={"user_ids": ",".join(user_ids)}, headers=account.headers)


async def known_as_contacts(http: httpx.AsyncClient, account: Account, *user_ids: str) -> None:
    """Wait until presence's projection of chat membership (fed by `chat.members_changed`, on its way
    while the chat's creation is answered) makes these users the account's contacts: a snapshot taken
    before then does not name them yet (they come in the next update instead)."""

    async def known() -> bool:
        return (await look_up(http, account, *user_ids)).status_code == 200

    await eventually(known, what=f"presence to know {user_ids} as contacts")
