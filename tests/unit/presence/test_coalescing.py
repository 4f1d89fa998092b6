"""Coalescing, pure: a bounded buffer of changed users, one flush per interval, one frame per watcher."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlour.presence.domain.coalescing import PendingChanges, Update, plan


def test_a_user_who_changes_many_times_is_pending_once_in_first_change_order() -> None:
    pending = PendingChanges(capacity=10)
    for user in ["b", "a", "b", "c", "a", "b"]:
        assert pending.add(user)
    assert pending.take(now=0.0) == ["b", "a", "c"]
    assert len(pending) == 0


def test_a_flush_goes_at_most_once_per_interval_and_keeps_what_is_not_yet_due() -> None:
    pending = PendingChanges(capacity=10, interval=1.0)
    pending.add("a")
    assert pending.take(now=5.0) == ["a"]
    pending.add("b")
    assert pending.due(now=5.4) == pytest.approx(0.6)
    assert pending.take(now=5.4) == [], "not yet due: nothing is taken"
    assert len(pending) == 1
    assert pending.due(now=6.0) == 0.0
    assert pending.take(now=6.0) == ["b"]


def test_the_buffer_is_bounded_but_a_user_already_pending_is_always_noted() -> None:
    pending = PendingChanges(capacity=2)
    assert pending.add("a")
    assert pending.add("b")
    assert pending.full
    assert not pending.add("c"), "full: a new user waits for the flush"
    assert pending.add("a"), "already pending: nothing to add"
    assert pending.take(now=0.0) == ["a", "b"]
    assert pending.add("c")


def test_each_watcher_gets_one_frame_with_each_changed_contact_once_and_never_themself() -> None:
    chats_of = {"a": {"g", "d1"}, "b": {"g"}, "c": {"d2"}}
    members_of = {"g": {"a", "b", "w"}, "d1": {"a", "w"}, "d2": {"c", "x"}}
    updates = plan(["a", "b", "c", "a"], chats_of, members_of)
    heard = {watcher: update.users for update in updates for watcher in update.watchers}
    assert heard == {"w": ("a", "b"), "b": ("a",), "a": ("b",), "x": ("c",)}
    assert sum(len(update.watchers) for update in updates) == len(heard), "one frame per watcher"


def test_watchers_who_hear_the_same_users_share_one_frame() -> None:
    members = {"g": {f"w{i}" for i in range(100)} | {"a", "b"}}
    updates = plan(["a", "b"], {"a": {"g"}, "b": {"g"}}, members)
    assert Update(("a", "b"), tuple(sorted(w for w in members["g"] if w.startswith("w")))) in [
        Update(update.users, tuple(sorted(update.watchers))) for update in updates
    ]
    assert len(updates) == 3, "the hundred onlookers share a frame; a and b each hear the other"


def test_a_user_alone_in_their_chats_is_heard_by_nobody() -> None:
    assert plan(["a"], {"a": {"solo"}}, {"solo": {"a"}}) == []
    assert plan(["a"], {}, {}) == []


@given(
    st.dictionaries(
        st.sampled_from("abcdefgh"), st.sets(st.sampled_from(["c1", "c2", "c3", "c4"]), max_size=3), max_size=8
    ),
    st.lists(st.sampled_from("abcdefgh"), max_size=20),
)
def test_every_watcher_hears_exactly_the_changed_users_they_share_a_chat_with(
    chats_of: dict[str, set[str]], changed: list[str]
) -> None:
    members_of: dict[str, set[str]] = {}
    for user, chats in chats_of.items():
        for chat in chats:
            members_of.setdefault(chat, set()).add(user)
    updates = plan(changed, chats_of, members_of)
    watchers = [watcher for update in updates for watcher in update.watchers]
    assert len(watchers) == len(set(watchers)), "at most one frame per watcher"
    heard = {watcher: update.users for update in updates for watcher in update.watchers}
    for watcher, users in heard.items():
        assert len(users) == len(set(users)), "each user at most once in a frame"
        assert watcher not in users
        assert list(users) == [u for u in dict.fromkeys(changed) if u in users], "in change order"
    for user in set(changed):
        for other in {m for chat in chats_of.get(user, ()) for m in members_of[chat]} - {user}:
            assert user in heard[other]
    for watcher, users in heard.items():
        for user in users:
            assert chats_of[user] & chats_of[watcher], "only users who share a chat"
