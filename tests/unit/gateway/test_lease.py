"""The gateway's lease: one key-value member, renewed; a renewal after a lapse closes the sessions."""

from __future__ import annotations

from parlour.common.clock import ManualClock
from parlour.common.contracts import GATEWAY_LEASES
from parlour.common.errors import Unavailable
from parlour.common.kv.memory import InMemoryKeyValueStore
from parlour.gateway.application.lease import GatewayLease


def lease(clock: ManualClock, lapses: list[str], ttl: float = 30.0) -> tuple[GatewayLease, InMemoryKeyValueStore]:
    kv = InMemoryKeyValueStore(clock)
    return GatewayLease(kv, "g1", ttl, clock, lambda: lapses.append("lapsed")), kv


async def test_a_renewed_lease_stays_and_one_left_alone_expires_after_its_ttl() -> None:
    clock, lapses = ManualClock(), list[str]()
    held, kv = lease(clock, lapses)
    await held.renew()
    assert held.interval == 10.0
    for _ in range(5):
        clock.advance(held.interval)
        await held.renew()
        assert await kv.members(GATEWAY_LEASES) == {"g1"}
    clock.advance(29.9)
    assert await kv.members(GATEWAY_LEASES) == {"g1"}
    clock.advance(0.1)
    assert await kv.members(GATEWAY_LEASES) == set()
    assert lapses == []


async def test_a_renewal_a_whole_ttl_after_the_last_one_reports_the_lapse_once() -> None:
    clock, lapses = ManualClock(), list[str]()
    held, kv = lease(clock, lapses, ttl=3.0)
    await held.renew()
    clock.advance(3.0)
    await held.renew()
    assert lapses == ["lapsed"]
    clock.advance(1.0)
    await held.renew()
    assert lapses == ["lapsed"]
    assert await kv.members(GATEWAY_LEASES) == {"g1"}


async def test_releasing_the_lease_removes_it_at_once() -> None:
    clock, lapses = ManualClock(), list[str]()
    held, kv = lease(clock, lapses)
    await held.renew()
    await held.release()
    assert await kv.members(GATEWAY_LEASES) == set()


class _DownStore(InMemoryKeyValueStore):
    down = True

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        if self.down:
            raise Unavailable("the store is down")
        await super().add_member(key, member, ttl)


async def test_a_gateway_that_starts_while_the_store_is_down_treats_its_first_lease_as_after_a_lapse() -> None:
    clock, lapses = ManualClock(), list[str]()
    kv = _DownStore(clock)
    held = GatewayLease(kv, "g1", 30.0, clock, lambda: lapses.append("lapsed"))
    await held.start()
    assert await kv.members(GATEWAY_LEASES) == set()
    kv.down = False
    clock.advance(held.interval)
    await held.renew()
    assert lapses == ["lapsed"], "sessions admitted meanwhile are closed, to be announced again"
    assert await kv.members(GATEWAY_LEASES) == {"g1"}
