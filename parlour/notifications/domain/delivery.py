"""The rules of delivering a notification to a channel, pure (no I/O, no clock, no randomness of its own).

- **Outcomes**: what an HTTP answer (or its absence) means for a delivery: done, the subscription is gone,
  try again later, or never.
- **Backoff**: exponential with jitter (the caller passes the random draw), at least what `Retry-After` asks.
- **Webhook signatures**: Standard Webhooks v1 (HMAC-SHA256 over `id.timestamp.body`, secret `whsec_…`).
- **Target policy**: which URLs and addresses a webhook or push endpoint may point at (no loopback,
  link-local, private, multicast, unspecified or reserved address unless the operator allows private targets).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from urllib.parse import SplitResult, urlsplit

from parlour.notifications.domain.channel_errors import TargetRefused


class ChannelKind(StrEnum):
    """The kinds of channel a user can have."""

    PUSH = "push"
    WEBHOOK = "webhook"


class DeliveryState(StrEnum):
    """Where one delivery (a notification to one channel) stands."""

    PENDING = "pending"  # due at `next_attempt_at` (again, after a failed attempt)
    PARKING = "parking"  # given up: on its way to the bus's parking lot
    PARKED = "parked"  # in the parking lot; a replay makes it pending again
    DONE = "done"  # the channel took it (2xx)
    DROPPED = "dropped"  # the channel is gone (subscription expired, webhook deleted or disabled)


class Outcome(StrEnum):
    """What one attempt's answer means."""

    DELIVERED = "delivered"
    GONE = "gone"  # 404/410 from a push service: the subscription no longer exists
    RETRY = "retry"  # 408/425/429/5xx, a timeout, a connection error
    FAILED = "failed"  # any other answer: retrying would get the same


_RETRYABLE = frozenset({408, 425, 429})


def classify(kind: ChannelKind, status: int | None) -> Outcome:
    """The outcome of an attempt that got HTTP `status` (None: no answer, a timeout or connection error)."""
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if kind is ChannelKind.PUSH and status in {404, 410}:
        return Outcome.GONE
    if status in _RETRYABLE or status >= 500:
        return Outcome.RETRY
    return Outcome.FAILED


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Bounded retries: `attempts` in all, waiting about `base * 2 ** (n - 1)` (at most `cap`) after the n-th."""

    attempts: int = 8
    base: float = 5.0
    cap: float = 3600.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base <= 0 or self.cap < self.base:
            raise ValueError("a retry schedule needs attempts >= 1 and 0 < base <= cap")

    def gives_up(self, attempts: int) -> bool:
        """Whether a delivery whose attempt number `attempts` (1-based) failed is to be parked."""
        return attempts >= self.attempts

    def delay(self, attempts: int, jitter: float, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempts`: half the exponential step plus `jitter` (a draw in
        [0, 1)) times the other half, so that deliveries failing together do not retry together; never less
        than `retry_after` (the receiver's own `Retry-After`), itself capped at one day."""
        step = min(self.cap, self.base * 2.0 ** (attempts - 1))
        wait = step / 2 + step / 2 * min(max(jitter, 0.0), 1.0)
        if retry_after is not None:
            wait = max(wait, min(retry_after, _RETRY_AFTER_CAP))
        return wait


_RETRY_AFTER_CAP = 24 * 3600.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from `now` that a `Retry-After` header asks for (delta-seconds or an HTTP date); None if absent
    or unreadable, 0 for a date in the past."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


# -- Standard Webhooks -------------------------------------------------------------------------------

SECRET_PREFIX = "whsec_"


def webhook_secret(key: bytes) -> str:
    """The secret shown to the user for the signing `key` (random bytes): `whsec_` and its base64."""
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def sign_webhook(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of `body`: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


# -- Target policy -----------------------------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the syntax checks: where to connect, and what to say in `Host` and SNI."""

    url: str
    scheme: str
    host: str  # as written in the URL (a name, or an address without brackets)
    port: int
    path: str  # path and query, at least "/"

    @property
    def origin(self) -> str:
        """`scheme://host[:port]` as the URL has it (the VAPID audience)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()

    @property
    def host_header(self) -> str:
        """The `Host` header: the name, and the port when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_to(self, address: Address) -> str:
        """The URL with `address` in place of the host: what is actually connected to."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Where notifications may be sent: public HTTPS only, unless `allow_private` (tests, an intranet)."""

    allow_private: bool = False

    def check_url(self, url: str, max_length: int = 2048) -> Target:
        """The parts of `url`, or `TargetRefused` for a URL that is malformed, too long, not HTTPS (unless
        private targets are allowed, which allows HTTP too), carries credentials, or names a refused address."""
        if len(url) > max_length:
            raise TargetRefused(f"The URL is longer than {max_length} characters.")
        parts = _split(url)
        allowed = {"https", "http"} if self.allow_private else {"https"}
        if parts.scheme not in allowed:
            raise TargetRefused("Only https:// URLs are accepted.")
        if parts.username is not None or parts.password is not None:
            raise TargetRefused("The URL must not carry a user name or password.")
        host = parts.hostname
        if not host:
            raise TargetRefused("The URL names no host.")
        literal = literal_address(host)
        if literal is not None:
            self.check_addresses([literal])
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Target(url=url, scheme=parts.scheme, host=host, port=port, path=path)

    def check_addresses(self, addresses: Iterable[Address]) -> Address:
        """The first of the addresses a host resolved to, if every one of them is allowed; else `TargetRefused`.

        Every one, not some: a name that resolves to a public and a private address could be connected to
        either."""
        found = list(addresses)
        if not found:
            raise TargetRefused("The host does not resolve to any address.")
        if not self.allow_private:
            for address in found:
                if (reason := refused_because(address)) is not None:
                    raise TargetRefused(f"The host resolves to a {reason} address ({address}), which is refused.")
        return found[0]


def refused_because(address: Address) -> str | None:
    """Why `address` is not a public target (loopback, link-local, private, …), or None if it is one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    return next((name for name, hit in checks if hit), None)


def parse_address(text: str) -> Address:
    """An address as `getaddrinfo` writes it (an IPv6 one may carry a `%zone`)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError as error:
        raise TargetRefused(f"The URL is not valid: {error}.") from None
    if any(character.isspace() for character in url) or "#" in url:
        raise TargetRefused("The URL must not contain spaces or a fragment.")
    return parts


def literal_address(host: str) -> Address | None:
    """The address `host` spells out (`127.0.0.1`, `::1`), or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
