"""The messages that cross service boundaries on the bus, encoded with msgspec (the hot path).

Gateway → messaging (commands, partition key = `chat_id`, or `user_id` for `sync`):
    a `ClientCommand` whose `user_id` and `session_id` the gateway stamps from the authenticated
    connection; a client never chooses them.

Messaging → gateways (events, routing keys = `user.<id>` of every recipient):
    a `Delivery` batch. Each item names the users it is for and, for an answer to one connection (an ack,
    a rejection, a sync answer), that session; `frame` is the server→client WebSocket frame, encoded once
    by the sender and written to the sockets as it is.

Auth → others (events, routing key `auth.user.registered`): `UserRegistered`.

Gateway → presence and others (events, routing key `session.opened` / `session.closed`): `SessionEvent`.
"""

from __future__ import annotations

import msgspec

COMMAND = "client.command"
DELIVERY = "delivery"
SESSION_OPENED = "session.opened"
SESSION_CLOSED = "session.closed"
USER_REGISTERED = "user.registered"
USER_REGISTERED_KEY = "auth.user.registered"


def user_key(user_id: str) -> str:
    """The routing key of a user's events."""
    return f"user.{user_id}"


class ClientCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A command from a client, stamped by the gateway with who sent it and on which connection.

    `type` is the client frame's type (`message.send`, `message.edit`, `message.delete`, `read`,
    `typing`, `sync`); `payload` is the rest of the frame, validated by the consumer.
    """

    type: str
    user_id: str
    session_id: str
    payload: msgspec.Raw
    trace_id: str | None = None


class DeliveryItem(msgspec.Struct, frozen=True, kw_only=True):
    """One frame for some users' connections, or for one connection when `session_id` is set."""

    user_ids: list[str]
    frame: msgspec.Raw
    session_id: str | None = None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """Frames to deliver, in order; one bus message can carry many (a batch)."""

    items: list[DeliveryItem]


class SessionEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A WebSocket session opened or closed on a gateway."""

    user_id: str
    session_id: str
    gateway_id: str
    at: float


class UserRegistered(msgspec.Struct, frozen=True, kw_only=True):
    """A user signed up."""

    user_id: str
    username: str
    display_name: str
