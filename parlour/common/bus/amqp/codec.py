"""How a `BusMessage` travels as an AMQP message, and how a parked one carries its story.

Properties: `message_id` and `type` (both required: a message lacking either is malformed and parked at
once), `delivery_mode` persistent. Headers: the message's own (trace context) plus the bus's own, which
are stripped again on the way in:

* `x-parlour-attempts`: failed handler attempts so far (on retried and parked messages);
* `x-parlour-error`, `x-parlour-origin`, `x-parlour-parked-at`: on parked messages;
* `parlour-retry-delay`: routes a retry to the retry queue of that delay;
* `parlour-fanout`: set when one event had to travel as several AMQP messages (see `AmqpMessageBus`);
* RabbitMQ's own `CC`, `x-death` and `x-first-death-*`/`x-last-death-*`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, DeliveryMode
from aiormq import spec

from parlour.common.bus.amqp.topology import RETRY_DELAY_HEADER
from parlour.common.bus.port import BusMessage, ParkedMessage, new_message_id

ATTEMPTS = "x-parlour-attempts"
ERROR = "x-parlour-error"
ORIGIN = "x-parlour-origin"
PARKED_AT = "x-parlour-parked-at"
FANOUT = "parlour-fanout"
_RESERVED = (ATTEMPTS, ERROR, ORIGIN, PARKED_AT, FANOUT, RETRY_DELAY_HEADER, "CC", "BCC", "x-death")
_RESERVED_PREFIXES = ("x-first-death-", "x-last-death-")
_PERSISTENT = int(DeliveryMode.PERSISTENT)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An AMQP message ready to publish (built directly: aio-pika's `Message` costs more than the send)."""

    body: bytes
    properties: spec.Basic.Properties


def encode(
    message: BusMessage, headers: Mapping[str, Any] | None = None, *, expiration_ms: int | None = None
) -> Outgoing:
    """`message` as a persistent AMQP message, with the bus's own `headers` added."""
    properties = spec.Basic.Properties(
        headers={**message.headers, **(headers or {})},
        delivery_mode=_PERSISTENT,
        message_id=message.message_id,
        message_type=message.type,
        expiration=None if expiration_ms is None else str(expiration_ms),
    )
    return Outgoing(message.body, properties)


def decode(incoming: AbstractIncomingMessage) -> BusMessage | None:
    """The bus message `incoming` carries, or None when it is malformed (no message id or type)."""
    if not incoming.message_id or not incoming.type:
        return None
    return BusMessage(incoming.type, incoming.body, incoming.message_id, user_headers(incoming.headers))


def salvage(incoming: AbstractIncomingMessage) -> BusMessage:
    """Whatever can be read of a malformed message, to park it (a message id is made up if missing)."""
    return BusMessage(
        incoming.type or "", incoming.body, incoming.message_id or new_message_id(), user_headers(incoming.headers)
    )


def attempts_of(incoming: AbstractIncomingMessage) -> int:
    """How many handler attempts of this message already failed."""
    return _int(incoming.headers.get(ATTEMPTS))


def is_fanout(incoming: AbstractIncomingMessage) -> bool:
    """Whether this event was split into several AMQP messages (a route may see it more than once)."""
    return FANOUT in incoming.headers


def user_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """The message's own headers, without the bus's and the broker's."""
    return {
        key: _text(value)
        for key, value in headers.items()
        if key not in _RESERVED and not key.startswith(_RESERVED_PREFIXES)
    }


def park_headers(origin: str, error: str, attempts: int, parked_at: float) -> dict[str, Any]:
    """The headers that tell a parked message's story."""
    return {ORIGIN: origin, ERROR: error, ATTEMPTS: attempts, PARKED_AT: repr(parked_at)}


def decode_parked(incoming: AbstractIncomingMessage) -> ParkedMessage:
    """A message read from the parking queue."""
    headers = incoming.headers
    return ParkedMessage(
        message=salvage(incoming),
        origin=_text(headers.get(ORIGIN, "")),
        error=_text(headers.get(ERROR, "")),
        attempts=_int(headers.get(ATTEMPTS)),
        parked_at=float(_text(headers.get(PARKED_AT, "0")) or 0),
    )


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _int(value: Any) -> int:
    try:
        return int(_text(value)) if value is not None else 0
    except ValueError:
        return 0
