"""Reading and replaying the parking queue `<ns>.parked` without losing a message.

Both walk the queue with basic.get on a channel of their own and never ack what they keep: closing that
channel makes the broker requeue every message still unacknowledged, in its original place, even when
the walk fails half-way. A replayed message is acked only after its copy to the origin queue is
confirmed; one whose origin is gone (a route of a dead gateway) stays parked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog
from aio_pika.abc import AbstractChannel

from parlour.common.bus.amqp import codec
from parlour.common.bus.port import ParkedMessage, UnroutableError

log = structlog.get_logger(__name__)

Publish = Callable[[str, codec.Outgoing], Awaitable[None]]


async def read_parked(channel: AbstractChannel, queue: str, limit: int) -> list[ParkedMessage]:
    """Up to `limit` parked messages, oldest first; they all stay parked once `channel` closes."""
    parking = await channel.get_queue(queue, ensure=False)
    found: list[ParkedMessage] = []
    while len(found) < limit and (incoming := await parking.get(no_ack=False, fail=False)) is not None:
        found.append(codec.decode_parked(incoming))
    return found


async def replay_parked(channel: AbstractChannel, queue: str, ids: Sequence[str] | None, publish: Publish) -> int:
    """Send the parked messages with `ids` (all when None) back to their origin; returns how many."""
    parking = await channel.get_queue(queue, ensure=False)
    wanted = None if ids is None else set(ids)
    replayed = 0
    while wanted != set() and (incoming := await parking.get(no_ack=False, fail=False)) is not None:
        parked = codec.decode_parked(incoming)
        if wanted is not None and parked.message.message_id not in wanted:
            continue  # left unacked: back in its place when the channel closes
        if await _send_back(parked, publish):
            await incoming.ack()
            replayed += 1
            if wanted is not None:
                wanted.discard(parked.message.message_id)
    return replayed


async def _send_back(parked: ParkedMessage, publish: Publish) -> bool:
    try:
        await publish(parked.origin, codec.encode(parked.message))
    except UnroutableError:
        log.warning("bus.replay_no_origin", origin=parked.origin, message_id=parked.message.message_id)
        return False
    return True
