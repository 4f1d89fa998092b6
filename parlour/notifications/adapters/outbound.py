"""Posting to a URL a user gave: resolve the host once, check every address, connect to the checked one.

The name is resolved here, the addresses go through the target policy, and the request goes to the first
address itself, with the name in `Host` and in TLS's SNI (and certificate check): a name that resolves
differently a moment later (DNS rebinding) cannot send the request elsewhere. Redirects are not followed.
The answer's body is read up to `_BODY_LIMIT` bytes, for the error text only.
"""

from __future__ import annotations

import asyncio
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping

import httpx

from parlour.common.clock import Clock
from parlour.notifications.domain.channel_errors import TargetRefused
from parlour.notifications.domain.channels import Attempt
from parlour.notifications.domain.delivery import (
    Address,
    Target,
    TargetPolicy,
    literal_address,
    parse_address,
    parse_retry_after,
)

_BODY_LIMIT = 1024
_ERROR_CHARS = 200

Resolver = Callable[[str, int], Awaitable[list[Address]]]


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to, in the resolver's order (an address literal: itself)."""
    literal = literal_address(host)
    if literal is not None:  # no resolver needed, and `getaddrinfo` would cost a hop to the executor's thread
        return [literal]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    found: list[Address] = []
    for *_, sockaddr in infos:
        address = parse_address(str(sockaddr[0]))
        if address not in found:
            found.append(address)
    return found


ClientFactory = Callable[[], httpx.AsyncClient]

# Clients kept open at once, one per host name (the least recently used is closed past this).
_CLIENTS = 256


class Outbound:
    """POSTs to users' URLs under the target policy, with one client per host name (from `new_client`, which
    must not follow redirects): connections are pooled by address, so a connection whose TLS was checked for
    one name must never carry a request for another name that resolves to the same address."""

    def __init__(
        self,
        new_client: ClientFactory,
        policy: TargetPolicy,
        clock: Clock,
        resolver: Resolver = resolve,
        *,
        timeout: float = 10.0,
    ) -> None:
        self._new_client = new_client
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self.policy = policy
        self._clock = clock
        self._resolve = resolver
        # The resolution may take `timeout`, and the request (connect, send, answer) twice that in all,
        # whatever the client's per-phase timeouts: a receiver that drips its answer is cut off too.
        self._timeout = timeout

    async def aclose(self) -> None:
        """Close every client."""
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()

    async def _client_for(self, host: str) -> httpx.AsyncClient:
        client = self._clients.get(host)
        if client is not None:
            self._clients.move_to_end(host)
            return client
        client = self._clients[host] = self._new_client()
        if len(self._clients) > _CLIENTS:
            _, oldest = self._clients.popitem(last=False)
            await oldest.aclose()  # its requests under way fail and are retried
        return client

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        """One POST of `body` to `url`; what came back (never raises for the network or the receiver)."""
        try:
            target = self.policy.check_url(url)
            address = self.policy.check_addresses(await self._addresses(target))
        except TargetRefused as refused:
            return Attempt(None, error=refused.message, refused=True)
        except OSError as error:
            return Attempt(None, error=f"the host does not resolve: {error}")
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        client = await self._client_for(target.host)
        request = client.build_request(
            "POST",
            target.url_to(address),
            content=body,
            headers={**headers, "Host": target.host_header},
            extensions=extensions,
        )
        try:
            async with asyncio.timeout(2 * self._timeout):
                response = await client.send(request, stream=True)
                try:
                    text = await _read_some(response)
                finally:
                    await response.aclose()
        except (httpx.TimeoutException, TimeoutError):
            return Attempt(None, error="timed out")
        except httpx.HTTPError as error:
            return Attempt(None, error=f"{type(error).__name__}: {error}"[:_ERROR_CHARS])
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
        problem = None if response.is_success else f"HTTP {response.status_code} {text}".strip()[:_ERROR_CHARS]
        return Attempt(response.status_code, retry_after=retry_after, error=problem)

    async def _addresses(self, target: Target) -> list[Address]:
        async with asyncio.timeout(self._timeout):  # TimeoutError is an OSError: "does not resolve"
            return await self._resolve(target.host, target.port)

    def check(self, url: str) -> Target:
        """`url` through the policy's syntax and literal-address checks (`TargetRefused` if it fails them)."""
        return self.policy.check_url(url)

    async def check_resolved(self, url: str) -> None:
        """`check`, then resolve the host and check its addresses (`TargetRefused` if any is refused)."""
        target = self.check(url)
        try:
            addresses = await self._addresses(target)
        except OSError as error:
            raise TargetRefused(f"The host {target.host!r} does not resolve: {error}.") from None
        self.policy.check_addresses(addresses)


async def _read_some(response: httpx.Response) -> str:
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= _BODY_LIMIT:
            break
    return data[:_BODY_LIMIT].decode("utf-8", "replace").replace("\n", " ")
