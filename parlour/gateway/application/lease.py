"""This gateway's lease in the key-value store: how presence tells a live gateway from a dead one.

A gateway is a member of the set `GATEWAY_LEASES` with its own expiry (TTL ≤ 30 s), renewed every third
of the TTL: one key-value operation per gateway per renewal, whatever the number of its sessions.
Presence records each session under the gateway named in its opening (`session.events`); once a gateway's member
has expired (it was killed, or lost the store for a whole TTL), presence counts all its sessions closed.

The opposite mistake is handled here: a renewal that comes a whole TTL after the previous successful one
may have let the lease lapse, so presence may already have closed this gateway's sessions while they
are in fact live. `on_lapse` then closes them all (clients reconnect and are announced again), so no one
stays offline by accident either.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from parlour.common.bus.background import every
from parlour.common.clock import Clock
from parlour.common.contracts import GATEWAY_LEASES
from parlour.common.kv import KeyValueStore

logger = structlog.get_logger(__name__)


class GatewayLease:
    """Renews (and at shutdown gives up) this gateway's member of `GATEWAY_LEASES`."""

    def __init__(
        self, kv: KeyValueStore, gateway_id: str, ttl: float, clock: Clock, on_lapse: Callable[[], None]
    ) -> None:
        self._kv = kv
        self.gateway_id = gateway_id
        self.ttl = ttl
        self._clock = clock
        self._on_lapse = on_lapse
        self._renewed_at: float | None = None  # monotonic time a successful renewal started

    @property
    def interval(self) -> float:
        """Seconds between renewals: a third of the TTL, so two may fail before it lapses."""
        return self.ttl / 3

    async def start(self) -> None:
        """The first renewal, before any session opens. If the store is down the gateway starts anyway
        (readiness shows the store) and the first renewal that succeeds counts as one after a lapse."""
        try:
            await self.renew()
        except Exception as error:
            logger.warning("gateway.lease_renewal_failed", error=f"{type(error).__name__}: {error}")
            self._renewed_at = self._clock.monotonic() - self.ttl

    async def renew(self) -> None:
        """Extend the lease by a TTL from now; raises what the store raises."""
        started = self._clock.monotonic()
        await self._kv.add_member(GATEWAY_LEASES, self.gateway_id, self.ttl)
        if self._renewed_at is not None and started - self._renewed_at >= self.ttl:
            logger.warning("gateway.lease_lapsed", gateway_id=self.gateway_id, seconds=started - self._renewed_at)
            self._on_lapse()
        self._renewed_at = started

    async def run(self) -> None:
        """Renew every `interval` until cancelled; a failed renewal is logged and tried again next time."""
        await every(self.interval, self.renew, failure="gateway.lease_renewal_failed")

    async def release(self) -> None:
        """Give the lease up at shutdown (presence closes what sessions are left at once)."""
        try:
            await self._kv.remove_member(GATEWAY_LEASES, self.gateway_id)
        except Exception as error:
            logger.warning("gateway.lease_release_failed", error=f"{type(error).__name__}: {error}")
