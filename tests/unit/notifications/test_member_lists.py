"""`MemberLists`: a chat's member list is decoded when it changes, not once per `message.sent`."""

from __future__ import annotations

import msgspec

from parlour.notifications.adapters.bus import MemberLists


def raw(*member_ids: str) -> msgspec.Raw:
    """A member list as it travels inside a `message.sent`."""
    return msgspec.Raw(msgspec.json.encode(list(member_ids)))


def test_the_same_list_is_decoded_once_and_a_changed_one_again() -> None:
    lists = MemberLists()
    first = lists.of("team", raw("ada", "bob"))
    assert first == ("ada", "bob")
    assert lists.of("team", raw("ada", "bob")) is first, "the same JSON: the list decoded before"
    assert lists.of("team", raw("ada", "bob", "cy")) == ("ada", "bob", "cy")
    assert lists.of("crew", raw("ada", "bob")) is not first, "another chat has its own list"


def test_past_the_capacity_the_least_recently_used_chat_is_forgotten() -> None:
    lists = MemberLists(capacity=2)
    team = lists.of("team", raw("ada"))
    crew = lists.of("crew", raw("bob"))
    assert lists.of("team", raw("ada")) is team  # now the most recently used
    lists.of("band", raw("cy"))  # a third chat: "crew" goes
    assert lists.of("team", raw("ada")) is team
    again = lists.of("crew", raw("bob"))
    assert again == crew
    assert again is not crew, "decoded again after it was forgotten"
