"""Asking the auth service about a user id the projection does not know yet, over its public REST API."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from parlour.common.errors import Unavailable
from parlour.common.ids import is_valid_id
from parlour.messaging.application.ports import ProjectedUser, UserLookup
from parlour.messaging.domain.messages import OnBehalf

_TIMEOUT = 5.0


class HttpUserLookup(UserLookup):
    """`GET {auth}/auth/users/{id}` with the caller's bearer token (auth shows any user to any user).

    `auth_url` comes from settings, never from a request: a client-chosen address (the Host header)
    would let any caller point the server's requests wherever they like.
    """

    def __init__(self, client: httpx.AsyncClient, auth_url: str) -> None:
        self._client = client
        self._auth_url = auth_url

    async def find(self, user_id: str, caller: OnBehalf | None) -> ProjectedUser | None:
        if caller is None or not is_valid_id(user_id):
            return None  # an id outside the rule names nobody, and never becomes part of a URL
        url = f"{self._auth_url.rstrip('/')}/auth/users/{quote(user_id, safe='')}"
        try:
            response = await self._client.get(
                url, headers={"Authorization": f"Bearer {caller.token}"}, timeout=_TIMEOUT
            )
        except httpx.HTTPError as error:
            raise Unavailable("The auth service cannot be reached to check a user id: try again.") from error
        if response.status_code in {404, 422}:
            return None
        if response.status_code != 200:
            raise Unavailable(f"The auth service answered {response.status_code} about a user id: try again.")
        body = response.json()
        if body.get("id") != user_id:  # another route answered (`me` is the caller): not this user
            return None
        if body.get("deleted"):  # a deleted account's tombstone: nobody to add
            return None
        return ProjectedUser(body["id"], body["username"], body["display_name"])
