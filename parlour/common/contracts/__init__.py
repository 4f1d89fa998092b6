"""The messages that cross service boundaries on the bus, encoded with msgspec (the hot path).

Client commands (commands.py) and service events (events.py) are declared once, in this package; every
codec, handler table and protocol name is derived from them.

Gateway → messaging (commands, partition key = `chat_id`, or `user_id` for `resume`):
    a `CommandBatch` of `ClientCommand`s: every command of one partition that was ready when the gateway
    flushed. The gateway stamps each with the authenticated `user_id` and `session_id` of its connection;
    a client never chooses them. `command` is the client's frame, re-encoded from its struct.

Messaging → gateways (events, routing keys = `user.<id>` of every recipient):
    a `Delivery` batch. Each item names the users it is for and, for an answer to one connection (an ack,
    a rejection, a resume answer), that session; `frame` is the server→client WebSocket frame, encoded once
    by the sender and written to the sockets as it is.

Every `Delivery` carries the header `PUBLISHED_AT` (Unix time, when it left: `published_now()`), from
which a gateway measures publication-to-socket latency (messaging publishes right after its commit).

Messaging → services (events, routing keys `messaging.<type>`): `ServiceEvents` (events.py).

Auth → others (events, routing keys `auth.user.registered`, `auth.user.renamed`, `auth.user.deleted`):
`UserRegistered`, `UserRenamed`, `UserDeleted`.

Gateway → presence and others (events, routing key `session.events`): `SessionEvents`, the openings and
closings of one gateway's sessions in the order they happened, many per bus message.
Each gateway also holds a lease in the key-value store: a member `gateway_id` of the set `GATEWAY_LEASES`,
renewed with a per-member expiry; presence treats the sessions of a gateway whose lease lapsed as closed.

Gateway → presence (events, routing key `PRESENCE_COMMANDS_KEY`): a `CommandBatch` of the commands routed
`Route.PRESENCE` (`activity`), stamped like those for messaging, in the order their connections sent them.

Presence → gateways: `Delivery` batches of `presence` frames on the watchers' user keys.

Presence → services (events, routing key and type `PRESENCE_CHANGED`): `PresenceChanges`, the users whose
status changed (online, away, offline; never hidden: services see the truth), gathered over one flush.
Notifications keeps the latest of each user.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec

COMMANDS = "client.commands"
DELIVERY = "delivery"
SESSION_EVENTS = "session.events"
USER_REGISTERED = "user.registered"
USER_REGISTERED_KEY = "auth.user.registered"
USER_RENAMED = "user.renamed"
USER_RENAMED_KEY = "auth.user.renamed"
USER_DELETED = "user.deleted"
USER_DELETED_KEY = "auth.user.deleted"
PUBLISHED_AT = "parlour-published-at"


def published_now() -> dict[str, str]:
    """The `PUBLISHED_AT` header of a message leaving now (wall time: the gateways are other processes)."""
    return {PUBLISHED_AT: repr(time.time())}


PRESENCE_COMMANDS_KEY = "presence.commands"
# The key-value set whose members are the gateways alive now (each with its own expiry: a lease).
GATEWAY_LEASES = "gateway.leases"


def user_key(user_id: str) -> str:
    """The routing key of a user's events."""
    return f"user.{user_id}"


class ClientCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A command from a client, stamped by the gateway with who sent it and on which connection.

    `command` is a `commands.ClientFrame` (its `type` inside), validated again by the consumer.
    """

    user_id: str
    session_id: str
    command: msgspec.Raw


class CommandBatch(msgspec.Struct, frozen=True, kw_only=True):
    """Commands of one partition, in the order their connections sent them (one bus message)."""

    commands: list[ClientCommand]


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

    kind: Literal["opened", "closed"]
    user_id: str
    session_id: str
    gateway_id: str
    at: float


class SessionEvents(msgspec.Struct, frozen=True, kw_only=True):
    """Session events of one gateway, in order (the body of one `session.events` bus message)."""

    events: list[SessionEvent]


class UserRegistered(msgspec.Struct, frozen=True, kw_only=True):
    """A user signed up."""

    user_id: str
    username: str
    display_name: str


class UserRenamed(msgspec.Struct, frozen=True, kw_only=True):
    """A user changed their display name."""

    user_id: str
    display_name: str


class UserDeleted(msgspec.Struct, frozen=True, kw_only=True):
    """A user deleted their account: their messages stay, shown under `display_name` ("Deleted user")."""

    user_id: str
    display_name: str


PRESENCE_CHANGED = "presence.changed"
PresenceStatus = Literal["online", "away", "offline"]


class PresenceChanged(msgspec.Struct, frozen=True, kw_only=True):
    """A user's status is now `status` (`last_seen`: Unix time they were last online, when offline)."""

    user_id: str
    status: PresenceStatus
    last_seen: float | None = None


class PresenceChanges(msgspec.Struct, frozen=True, kw_only=True):
    """The status changes of one presence flush, in the order they happened (the body of one bus message)."""

    changes: list[PresenceChanged]
