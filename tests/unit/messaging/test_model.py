"""Domain rules: message bodies, titles, client ids, direct pairs, the last owner, edits and tombstones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from parlour.messaging.domain.errors import (
    DirectChatWithSelf,
    InvalidChatTitle,
    InvalidClientId,
    InvalidMessageBody,
    LastOwnerCannotLeave,
    MessageAlreadyDeleted,
    TooManyMembers,
)
from parlour.messaging.domain.model import (
    GROUP_MAX_MEMBERS,
    Chat,
    ChatKind,
    Members,
    Message,
    Role,
    check_body,
    check_client_id,
    direct_key,
    ensure_owner_remains,
    group_member_ids,
    normalize_title,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("body", ["hi", " padded ", "x" * 4000, "é" * 4000, "🙂" * 4000, "line\nbreak", "a\tb"])
def test_bodies_within_the_rules_are_kept_unchanged(body: str) -> None:
    assert check_body(body) == body


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "\n\t ",
        "x" * 4001,
        "nul\x00byte",
        "lone \ud800 surrogate",
        "\x01" * 2800,  # 2,800 characters, but each is six bytes once JSON-escaped: over 16 KiB
    ],
)
def test_bodies_breaking_the_rules_are_refused(body: str) -> None:
    with pytest.raises(InvalidMessageBody):
        check_body(body)


def test_the_encoded_size_limit_counts_json_escapes() -> None:
    assert check_body('"' * 4000)
    with pytest.raises(InvalidMessageBody):
        check_body("\x02" * 2731)  # 16,386 bytes as \u0002 escapes
    assert check_body("\x02" * 2730)


def test_titles_are_trimmed_normalised_and_bounded() -> None:
    assert normalize_title("  Team  ") == "Team"
    assert normalize_title("Cafe\u0301") == "Café"
    for bad in ["", "   ", "x" * 129, "tab\there"]:
        with pytest.raises(InvalidChatTitle):
            normalize_title(bad)


def test_client_ids_are_short_printable_ascii() -> None:
    assert check_client_id("0b6c6f0e-6a52-4c39-9f7e-3f2b0d1f9a10")
    for bad in ["", "has space", "x" * 65, "ünï"]:
        with pytest.raises(InvalidClientId):
            check_client_id(bad)


def test_a_direct_pair_has_one_key_whoever_asks() -> None:
    assert direct_key("b", "a") == direct_key("a", "b") == "a:b"
    with pytest.raises(DirectChatWithSelf):
        direct_key("a", "a")
    chat = Chat("c", ChatKind.DIRECT, None, NOW, NOW, direct_key="a:b")
    assert (chat.peer_of("a"), chat.peer_of("b")) == ("b", "a")


def test_group_members_are_distinct_without_the_owner_and_bounded() -> None:
    assert group_member_ids("o", ["a", "o", "b", "a"]) == ["a", "b"]
    with pytest.raises(TooManyMembers):
        group_member_ids("o", [f"u{i}" for i in range(GROUP_MAX_MEMBERS)])


def _members(**roles: Role) -> Members:
    return Members.of("c", ChatKind.GROUP, 1, roles)


def test_the_last_owner_cannot_leave_or_step_down_but_one_of_two_can() -> None:
    alone = _members(o=Role.OWNER, m=Role.MEMBER)
    with pytest.raises(LastOwnerCannotLeave):
        ensure_owner_remains(alone, "o", None)
    with pytest.raises(LastOwnerCannotLeave):
        ensure_owner_remains(alone, "o", Role.ADMIN)
    ensure_owner_remains(alone, "o", Role.OWNER)
    ensure_owner_remains(alone, "m", None)
    ensure_owner_remains(_members(o=Role.OWNER, p=Role.OWNER), "o", None)


def test_edits_keep_seq_and_mark_the_time_and_tombstones_lose_the_body() -> None:
    message = Message("m", "c", 7, "a", "k", "hello", NOW)
    edited = message.edit("hello again", NOW)
    assert (edited.seq, edited.body, edited.edited_at) == (7, "hello again", NOW)
    with pytest.raises(InvalidMessageBody):
        message.edit("  ", NOW)
    tombstone = edited.delete("b", NOW)
    assert (tombstone.seq, tombstone.body, tombstone.deleted, tombstone.deleted_by) == (7, "", True, "b")
    assert tombstone.delete("c", NOW) is tombstone
    with pytest.raises(MessageAlreadyDeleted):
        tombstone.edit("back", NOW)
