"""The hub: route binding per user, fan-out to local sessions, ticks and drain, with fakes for the bus."""

from __future__ import annotations

import asyncio
import json

import pytest

from parlour.common.bus import DeliveryRoute
from parlour.common.clock import ManualClock
from parlour.gateway.adapters.codec import frame_info
from parlour.gateway.application.hub import Hub, admitted_auth_session
from parlour.gateway.application.ports import SessionEvents
from parlour.gateway.domain.protocol import CloseCode, ResumeRequest
from parlour.gateway.domain.session import Session, SessionLimits


class FakeRoute(DeliveryRoute):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.bound: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_unbind = False

    async def bind(self, routing_key: str) -> None:
        await self.gate.wait()
        self.calls.append(("bind", routing_key))
        self.bound.add(routing_key)

    async def unbind(self, routing_key: str) -> None:
        await self.gate.wait()
        self.calls.append(("unbind", routing_key))
        if self.fail_unbind:
            raise ConnectionError("bus down")
        self.bound.discard(routing_key)

    async def close(self) -> None:
        pass


class FakeEvents(SessionEvents):
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def opened(self, session: Session) -> asyncio.Future[bool]:
        return self._told("opened", session)

    def closed(self, session: Session) -> asyncio.Future[bool]:
        return self._told("closed", session)

    def _told(self, kind: str, session: Session) -> asyncio.Future[bool]:
        self.log.append((kind, session.id))
        done = asyncio.get_running_loop().create_future()
        done.set_result(True)
        return done


class Woken:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def route() -> FakeRoute:
    return FakeRoute()


@pytest.fixture
def events() -> FakeEvents:
    return FakeEvents()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def hub(route: FakeRoute, events: FakeEvents, clock: ManualClock) -> Hub:
    return Hub(route, events, clock, frame_info)


def session(session_id: str, user_id: str, limits: SessionLimits | None = None) -> Session:
    fresh = Session(session_id, user_id, limits or SessionLimits(), now=0.0)
    fresh.data_to_send()  # the hello
    return fresh


def written(target: Session) -> list[dict[str, object]]:
    return [json.loads(frame) for frame in target.data_to_send()]


async def test_a_users_route_is_bound_with_the_first_session_and_unbound_with_the_last(
    hub: Hub, route: FakeRoute, events: FakeEvents
) -> None:
    one, two = session("s1", "alice"), session("s2", "alice")
    await hub.attach(one, Woken())
    await hub.attach(two, Woken())
    await hub.detach(one)
    assert route.bound == {"user.alice"}
    await hub.detach(two)
    assert route.calls == [("bind", "user.alice"), ("unbind", "user.alice")]
    assert events.log == [("opened", "s1"), ("opened", "s2"), ("closed", "s1"), ("closed", "s2")]
    assert hub.session_count == hub.user_count == 0


async def test_a_reconnect_racing_the_last_close_leaves_the_route_bound(hub: Hub, route: FakeRoute) -> None:
    old, new = session("s1", "alice"), session("s2", "alice")
    await hub.attach(old, Woken())
    route.gate.clear()  # the unbind hangs on the bus...
    leaving = asyncio.create_task(hub.detach(old))
    arriving = asyncio.create_task(hub.attach(new, Woken()))
    await asyncio.sleep(0)
    route.gate.set()  # ...while the new session arrives
    await asyncio.gather(leaving, arriving)
    assert route.calls == [("bind", "user.alice"), ("unbind", "user.alice"), ("bind", "user.alice")]
    assert route.bound == {"user.alice"}


async def test_detach_twice_is_harmless_and_a_failed_unbind_does_not_raise(hub: Hub, route: FakeRoute) -> None:
    one = session("s1", "alice")
    await hub.attach(one, Woken())
    route.fail_unbind = True
    await hub.detach(one)
    await hub.detach(one)
    assert hub.session_count == 0


async def test_a_frame_reaches_every_local_session_of_its_users_and_wakes_them(hub: Hub) -> None:
    a1, a2, b1, c1 = session("a1", "alice"), session("a2", "alice"), session("b1", "bob"), session("c1", "carol")
    woken = {name: Woken() for name in ("a1", "a2", "b1", "c1")}
    for target in (a1, a2, b1, c1):
        await hub.attach(target, woken[target.id])
    count = hub.deliver(["alice", "bob", "alice", "dave"], None, b'{"type":"typing","chat_id":"x"}')
    assert count == 3
    assert [len(written(target)) for target in (a1, a2, b1, c1)] == [1, 1, 1, 0]
    assert [woken[name].count for name in ("a1", "a2", "b1", "c1")] == [1, 1, 1, 0]


async def test_a_frame_for_one_session_goes_only_there_and_only_if_it_is_that_users(hub: Hub) -> None:
    a1, a2 = session("a1", "alice"), session("a2", "alice")
    await hub.attach(a1, Woken())
    await hub.attach(a2, Woken())
    assert hub.deliver(["alice"], "a2", b'{"type":"message.ack"}') == 1
    assert hub.deliver(["bob"], "a1", b'{"type":"message.ack"}') == 0
    assert hub.deliver(["alice"], "gone", b'{"type":"message.ack"}') == 0
    assert (len(written(a1)), len(written(a2))) == (0, 1)


async def test_one_slow_session_is_cut_without_affecting_the_others(hub: Hub) -> None:
    slow = session("slow", "alice", SessionLimits(send_buffer_frames=3))
    fast = session("fast", "bob")
    await hub.attach(slow, Woken())
    await hub.attach(fast, Woken())
    for seq in range(1, 11):
        hub.deliver(["alice", "bob"], None, json.dumps({"type": "message.new", "chat_id": "c", "seq": seq}).encode())
        assert len(written(fast)) == 1
    assert slow.closing is not None
    assert slow.closing.code is CloseCode.SLOW_CONSUMER


async def test_resuming_sessions_hold_live_messages_and_get_them_after_resume_done(hub: Hub) -> None:
    resuming, live = session("r", "alice"), session("l", "alice")
    await hub.attach(resuming, Woken())
    await hub.attach(live, Woken())
    resuming.receive(ResumeRequest({"c": 1}), now=0.0)
    hub.deliver(["alice"], None, b'{"type":"message.new","chat_id":"c","seq":2}')
    hub.deliver(["alice"], None, b'{"type":"message.new","chat_id":"c","seq":3}')
    assert written(resuming) == []
    assert len(written(live)) == 2
    hub.deliver(["alice"], "r", b'{"type":"message.new","chat_id":"c","seq":2}')
    hub.deliver(["alice"], "r", b'{"type":"resume.done","chats":{"c":2},"truncated":[]}')
    assert [(frame["type"], frame.get("seq")) for frame in written(resuming)] == [
        ("message.new", 2),
        ("resume.done", None),
        ("message.new", 3),
    ]


async def test_ticks_ping_idle_sessions_and_wake_their_writers(hub: Hub, clock: ManualClock) -> None:
    idle = session("s1", "alice", SessionLimits(ping_interval=5, ping_timeout=5))
    woken = Woken()
    await hub.attach(idle, woken)
    clock.advance(5)
    hub.tick()
    assert written(idle) == [{"type": "ping"}]
    assert woken.count == 1
    clock.advance(5)
    hub.tick()
    assert idle.closing is not None
    assert idle.closing.code is CloseCode.PING_TIMEOUT


async def test_drain_closes_every_session_with_1012_after_its_frames_and_waits_for_them(hub: Hub) -> None:
    one, two = session("s1", "alice"), session("s2", "bob")
    await hub.attach(one, Woken())
    await hub.attach(two, Woken())
    hub.deliver(["alice"], None, b'{"type":"typing"}')
    draining = asyncio.create_task(hub.drain(grace=5))
    await asyncio.sleep(0)
    assert hub.draining
    assert len(one.data_to_send()) == 1  # buffered frames go before the close
    for target in (one, two):
        close = target.close_to_send
        assert close is not None
        assert close.code is CloseCode.SERVICE_RESTART
        await hub.detach(target)
    await asyncio.wait_for(draining, 1)


async def test_drain_gives_up_after_its_grace(hub: Hub) -> None:
    await hub.attach(session("s1", "alice"), Woken())
    await hub.drain(grace=0.01)
    assert hub.session_count == 1


async def test_a_route_gap_closes_every_session_so_its_client_resumes(hub: Hub) -> None:
    one, two = session("s1", "alice"), session("s2", "bob")
    woken = Woken()
    await hub.attach(one, woken)
    await hub.attach(two, Woken())
    hub.deliver(["alice"], None, b'{"type":"typing"}')
    hub.resync()
    assert len(one.data_to_send()) == 1  # what had arrived still goes out before the close
    for target in (one, two):
        close = target.close_to_send
        assert close is not None
        assert close.code is CloseCode.RESYNC
        assert close.code.reconnect
    assert woken.count >= 2
    assert not hub.draining, "a resync is no drain: new sessions are still welcome"


async def test_ending_an_auth_session_closes_its_sessions_only_and_drops_their_frames(hub: Hub) -> None:
    laptop, phone, other_login = session("s1", "alice"), session("s2", "alice"), session("s3", "alice")
    woken = Woken()
    await hub.attach(laptop, woken, auth_session_id="login-1")
    await hub.attach(phone, woken, auth_session_id="login-1")
    await hub.attach(other_login, Woken(), auth_session_id="login-2")
    hub.deliver(["alice"], None, b'{"type":"typing","chat_id":"c1","user_id":"bob"}')
    assert hub.end_auth_sessions(["login-1", "unknown-login"]) == 2
    for ended in (laptop, phone):
        assert ended.closing is not None
        assert ended.closing.code is CloseCode.SESSION_REVOKED
        assert ended.data_to_send() == []  # nothing more reaches a logged-out session
    assert other_login.closing is None
    assert hub.end_auth_sessions(["login-1"]) == 0  # already closing: closed once
    for ended in (laptop, phone):
        await hub.detach(ended)
    assert hub.end_auth_sessions(["login-1"]) == 0
    assert hub.session_count == 1


async def test_attach_takes_the_auth_session_from_the_pass_redeemed_in_this_task(hub: Hub) -> None:
    admitted_auth_session.set("login-9")
    one = session("s1", "alice")
    await hub.attach(one, Woken())
    assert hub.end_auth_sessions(["login-9"]) == 1
