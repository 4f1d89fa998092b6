"""Posting to a URL a user gave: resolve the host once, check every address, connect to the checked one.

The name is resolved here, the addresses go through the target policy, and the request goes to the first
address itself, with the name in `Host` and in TLS's SNI (and certificate check): a name that resolves
differently a moment later (DNS rebinding) cannot send the request elsewhere. Redirects are not followed.
The answer's body is read up to `_BODY_LIMIT` bytes, for the error text only.

The client is aiohttp's: httpx spent 3 to 5 ms of CPU per POST with 64 under way (its connection pool
matches requests to connections in O(N^2 + N*M) per request, encode/httpcore#1035), aiohttp about 0.14 ms
(docs/benchmarks.md, "Notifications beside fan-out").
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

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


class Outbound:
    """POSTs to users' URLs under the target policy, through one aiohttp session (which must not keep
    cookies). Its pool keys connections by address and by the name TLS checked (`server_hostname`), so a
    connection checked for one name never carries a request for another name on the same address."""

    def __init__(
        self,
        client: aiohttp.ClientSession,
        policy: TargetPolicy,
        clock: Clock,
        resolver: Resolver = resolve,
        *,
        timeout: float = 10.0,
    ) -> None:
        self._client = client
        self.policy = policy
        self._clock = clock
        self._resolve = resolver
        # The resolution may take `timeout`, and the request (connect, send, answer) twice that in all,
        # whatever the client's per-phase timeouts: a receiver that drips its answer is cut off too.
        self._timeout = timeout

    async def aclose(self) -> None:
        """Close the session and its connections."""
        await self._client.close()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        """One POST of `body` to `url`; what came back (never raises for the network or the receiver)."""
        try:
            target = self.policy.check_url(url)
            address = self.policy.check_addresses(await self._addresses(target))
        except TargetRefused as refused:
            return Attempt(None, error=refused.message, refused=True)
        except OSError as error:
            return Attempt(None, error=f"the host does not resolve: {error}")
        https = target.scheme == "https"
        try:
            async with (
                asyncio.timeout(2 * self._timeout),
                self._client.post(
                    target.url_to(address),
                    data=body,
                    headers={**headers, "Host": target.host_header},
                    allow_redirects=False,
                    server_hostname=target.host if https else None,
                ) as response,
            ):
                text = await _read_some(response)
        except TimeoutError:
            return Attempt(None, error="timed out")
        except aiohttp.ClientError as error:
            return Attempt(None, error=f"{type(error).__name__}: {error}"[:_ERROR_CHARS])
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
        success = 200 <= response.status < 300
        problem = None if success else f"HTTP {response.status} {text}".strip()[:_ERROR_CHARS]
        return Attempt(response.status, retry_after=retry_after, error=problem)

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


async def _read_some(response: aiohttp.ClientResponse) -> str:
    data = b""
    while len(data) < _BODY_LIMIT and (chunk := await response.content.read(_BODY_LIMIT - len(data))):
        data += chunk
    return data.decode("utf-8", "replace").replace("\n", " ")
