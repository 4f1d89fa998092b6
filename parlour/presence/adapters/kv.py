"""Presence's shared state in the key-value store (Redis in distributed mode, in memory embedded).

Keys (docs/subsystems/presence.md, "State"):

* `presence.sessions.<user>`: a hash, one field per session: its gateway and idle flag, or an empty
  value for a session closed in the last `TOMBSTONE_SECONDS` (so a late `session.opened` is ignored).
* `presence.gateway.<gateway>`: a set of `<user> <session>`, the sessions that gateway holds.
* `presence.gateways`: a set of the gateways that hold (or held) recorded sessions.
* `presence.user.<user>`: the user's presence (status, last seen); `presence.hidden.<user>`: present
  while the user hides their presence.
* `gateway.leases` (the gateways' own, parlour/common/contracts): the gateways alive now.

Every entry expires on its own, so nothing outlives a deployment that stopped cleaning up; a live
session's entries last `SESSION_SECONDS` (a connection open longer is taken for gone).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache

import msgspec

from parlour.common.contracts import GATEWAY_LEASES
from parlour.common.kv import AddMember, DeleteKey, KeyValueStore, PutField, RemoveMember, SetValue, Write
from parlour.presence.application.ports import GatewaySession, PresenceState, StateChanges
from parlour.presence.domain.model import NEVER_SEEN, LiveSession, Presence, Status

SESSION_SECONDS = 30 * 24 * 3600.0
# How long a user's status and last seen, and a hidden flag, are kept: renewed by every change, and the
# hidden flags by presence's mirror of its settings table (`MIRROR_SECONDS`), so a user who was last
# seen longer ago shows offline with no `last_seen`, and nothing outlives a deployment that stopped.
RECORD_SECONDS = 90 * 24 * 3600.0
TOMBSTONE_SECONDS = 600.0
_TOMBSTONE = b""
_KNOWN_GATEWAYS = "presence.gateways"


class _Session(msgspec.Struct, array_like=True, frozen=True):
    gateway_id: str
    idle: bool


class _Presence(msgspec.Struct, array_like=True, frozen=True):
    status: Status
    last_seen: float | None


_session_decoder = msgspec.json.Decoder(_Session)
_presence_decoder = msgspec.json.Decoder(_Presence)
_encoder = msgspec.json.Encoder()


def _sessions_key(user_id: str) -> str:
    return f"presence.sessions.{user_id}"


def _gateway_key(gateway_id: str) -> str:
    return f"presence.gateway.{gateway_id}"


def _presence_key(user_id: str) -> str:
    return f"presence.user.{user_id}"


def _hidden_key(user_id: str) -> str:
    return f"presence.hidden.{user_id}"


class KeyValuePresenceState(PresenceState):
    """`PresenceState` on the `KeyValueStore` port: what several presence processes (or a restarted one)
    agree on."""

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    async def sessions_of(self, user_ids: Collection[str]) -> dict[str, dict[str, LiveSession | None]]:
        users = list(user_ids)
        hashes = await self._kv.fields_many([_sessions_key(user_id) for user_id in users])
        return {
            user_id: {session_id: _session(value) for session_id, value in fields.items()}
            for user_id, fields in zip(users, hashes, strict=True)
        }

    async def apply(self, changes: StateChanges) -> None:
        writes: list[Write] = [
            # Known first: the sweep reads the known gateways before the live ones.
            AddMember(_KNOWN_GATEWAYS, gateway_id, SESSION_SECONDS)
            for gateway_id in sorted({session.gateway_id for _, _, session in changes.recorded})
        ]
        for user_id, session_id, session in changes.recorded:
            value = _encoder.encode(_Session(session.gateway_id, session.idle))
            writes.append(PutField(_sessions_key(user_id), session_id, value, SESSION_SECONDS))
            writes.append(AddMember(_gateway_key(session.gateway_id), f"{user_id} {session_id}", SESSION_SECONDS))
        for user_id, session_id, gateway_id in changes.closed:
            writes.append(PutField(_sessions_key(user_id), session_id, _TOMBSTONE, TOMBSTONE_SECONDS))
            writes.append(RemoveMember(_gateway_key(gateway_id), f"{user_id} {session_id}"))
        for user_id, presence in changes.presence.items():
            value = _encoder.encode(_Presence(presence.status, presence.last_seen))
            writes.append(SetValue(_presence_key(user_id), value, RECORD_SECONDS))
        await self._kv.write_many(writes)

    async def presence(self, user_ids: Sequence[str]) -> dict[str, tuple[Presence, bool]]:
        keys = [_presence_key(user_id) for user_id in user_ids] + [_hidden_key(user_id) for user_id in user_ids]
        values = await self._kv.get_many(keys)
        count = len(user_ids)
        return {
            user_id: (_presence(values[index]), values[count + index] is not None)
            for index, user_id in enumerate(user_ids)
        }

    async def set_hidden(self, user_ids: Collection[str], hidden: bool) -> None:
        writes: list[Write] = [
            SetValue(_hidden_key(user_id), b"1", RECORD_SECONDS) if hidden else DeleteKey(_hidden_key(user_id))
            for user_id in user_ids
        ]
        await self._kv.write_many(writes)

    async def gateways(self) -> tuple[set[str], set[str]]:
        # Known first: a gateway that records its first session after this read is live in the next one.
        known = await self._kv.members(_KNOWN_GATEWAYS)
        return known, await self._kv.members(GATEWAY_LEASES)

    async def sessions_of_gateway(self, gateway_id: str) -> list[GatewaySession]:
        members = await self._kv.members(_gateway_key(gateway_id))
        return [GatewaySession(*member.split(" ", 1)) for member in sorted(members)]

    async def forget_gateway(self, gateway_id: str) -> None:
        await self._kv.remove_member(_KNOWN_GATEWAYS, gateway_id)
        await self._kv.delete(_gateway_key(gateway_id))


def _session(value: bytes) -> LiveSession | None:
    if value == _TOMBSTONE:
        return None
    record = _session_decoder.decode(value)
    return LiveSession(record.gateway_id, record.idle)


@lru_cache(maxsize=4096)  # a few distinct values (a status and a last seen) come back again and again
def _presence(value: bytes | None) -> Presence:
    if value is None:
        return NEVER_SEEN
    record = _presence_decoder.decode(value)
    return Presence(record.status, record.last_seen)
