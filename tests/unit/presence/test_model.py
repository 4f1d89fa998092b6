"""The pure rules of presence: status from sessions, last seen, and what a watcher sees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlour.presence.domain.model import NEVER_SEEN, LiveSession, Presence, Seen, Status, after, seen, status_of

ACTIVE, IDLE = LiveSession("g1"), LiveSession("g2", idle=True)


@pytest.mark.parametrize(
    ("sessions", "status"),
    [
        ([], Status.OFFLINE),
        ([ACTIVE], Status.ONLINE),
        ([IDLE], Status.AWAY),
        ([IDLE, IDLE], Status.AWAY),
        ([IDLE, ACTIVE], Status.ONLINE),
        ([ACTIVE, IDLE, IDLE], Status.ONLINE),
    ],
)
def test_online_while_any_session_is_active_away_when_all_are_idle_offline_with_none(
    sessions: list[LiveSession], status: Status
) -> None:
    assert status_of(sessions) is status


@given(st.lists(st.booleans(), max_size=8))
def test_the_status_depends_only_on_whether_sessions_exist_and_are_idle(idles: list[bool]) -> None:
    status = status_of(LiveSession(f"g{i}", idle) for i, idle in enumerate(idles))
    expected = Status.OFFLINE if not idles else Status.AWAY if all(idles) else Status.ONLINE
    assert status is expected


def test_going_offline_stamps_last_seen_and_staying_offline_keeps_it() -> None:
    online = after(NEVER_SEEN, [ACTIVE], now=100.0)
    assert online == Presence(Status.ONLINE, None)
    offline = after(online, [], now=160.0)
    assert offline == Presence(Status.OFFLINE, 160.0)
    assert after(offline, [], now=500.0) == offline, "a second close of nothing changes nothing"
    back = after(offline, [IDLE], now=600.0)
    assert back == Presence(Status.AWAY, 160.0)
    assert after(back, [], now=700.0) == Presence(Status.OFFLINE, 700.0)


def test_someone_never_seen_is_offline_without_last_seen() -> None:
    assert after(NEVER_SEEN, [], now=100.0) == NEVER_SEEN
    assert seen(NEVER_SEEN, hidden=False) == Seen(Status.OFFLINE, None)


def test_a_watcher_sees_last_seen_only_while_offline() -> None:
    assert seen(Presence(Status.OFFLINE, 160.0), hidden=False) == Seen(Status.OFFLINE, 160.0)
    assert seen(Presence(Status.ONLINE, 160.0), hidden=False) == Seen(Status.ONLINE, None)
    assert seen(Presence(Status.AWAY, 160.0), hidden=False) == Seen(Status.AWAY, None)


@pytest.mark.parametrize("status", list(Status))
def test_a_hidden_user_is_seen_offline_and_never_seen_whatever_the_truth(status: Status) -> None:
    assert seen(Presence(status, 160.0), hidden=True) == Seen(Status.OFFLINE, None)
