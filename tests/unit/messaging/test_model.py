"""Domain rules: message bodies, titles, client ids, direct pairs, the last owner, edits, tombstones and
reactions."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parlour.messaging.domain.errors import (
    DirectChatWithSelf,
    InvalidChatTitle,
    InvalidClientId,
    InvalidMessageBody,
    LastOwnerCannotLeave,
    MessageAlreadyDeleted,
    TooManyMembers,
    UnknownReaction,
)
from parlour.messaging.domain.model import (
    GROUP_MAX_MEMBERS,
    REACTIONS,
    Chat,
    ChatKind,
    Members,
    Message,
    Quote,
    Reaction,
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


def test_each_member_puts_each_offered_emoji_on_a_message_once_and_takes_only_their_own_off() -> None:
    message = Message("m", "c", 7, "a", "k", "hello", NOW)
    thumbs, heart, party = REACTIONS[0], REACTIONS[1], REACTIONS[-1]
    reacted = message.react("b", party, add=True).react("c", thumbs, add=True).react("b", thumbs, add=True)
    assert reacted.react("b", thumbs, add=True) is reacted  # once per user and emoji
    assert reacted.react("a", heart, add=False) is reacted  # nothing of mine to take off
    # In the offered order, each emoji's users in the order they came.
    assert reacted.reactions == (Reaction(thumbs, ("c", "b")), Reaction(party, ("b",)))
    taken_off = reacted.react("b", party, add=False).react("c", thumbs, add=False)
    assert taken_off.reactions == (Reaction(thumbs, ("b",)),)
    assert taken_off.react("b", thumbs, add=False).reactions == ()  # an emoji nobody keeps is gone


@pytest.mark.parametrize("emoji", ["🐍", "+1", "", "👍👍", "\x00"])
def test_only_the_offered_emoji_are_reactions(emoji: str) -> None:
    with pytest.raises(UnknownReaction):
        Message("m", "c", 7, "a", "k", "hello", NOW).react("b", emoji, add=True)


def test_a_quote_shows_who_wrote_a_message_and_how_it_starts_and_nothing_of_it_once_deleted() -> None:
    message = Message("m", "c", 7, "a", "k", "é" * 200, NOW)
    assert message.quote() == Quote("m", 7, "a", "é" * 140, deleted=False)
    assert message.delete("a", NOW).quote() == Quote("m", 7, "a", "", deleted=True)


def test_a_tombstone_loses_its_reactions_and_takes_no_new_ones() -> None:
    reacted = Message("m", "c", 7, "a", "k", "hello", NOW).react("b", REACTIONS[0], add=True)
    tombstone = reacted.delete("a", NOW)
    assert tombstone.reactions == ()
    with pytest.raises(MessageAlreadyDeleted):
        tombstone.react("b", REACTIONS[0], add=True)


def test_the_web_clients_reactions_are_the_domains_in_the_same_order() -> None:
    script = Path(__file__).resolve().parents[3] / "parlour" / "web" / "static" / "js" / "views" / "reactions.js"
    declared = re.search(r"^export const REACTIONS = (\[.*\]);$", script.read_text(), re.MULTILINE)
    assert declared is not None, "reactions.js declares REACTIONS on one line"
    assert tuple(json.loads(declared.group(1))) == REACTIONS
