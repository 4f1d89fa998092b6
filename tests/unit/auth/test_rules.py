"""Pure rules of the auth domain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlour.auth.domain.errors import InvalidDisplayName, InvalidPassword, InvalidUsername
from parlour.auth.domain.model import (
    RevocationReason,
    Session,
    check_password,
    normalize_display_name,
    normalize_username,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Ada", "ada"), ("  bob_1.x-y ", "bob_1.x-y"), ("abc", "abc"), ("a" * 32, "a" * 32)],
)
def test_usernames_are_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert normalize_username(raw) == expected


@pytest.mark.parametrize("raw", ["ab", "a" * 33, "with space", "ünï", "semi;colon", "", "tab\tx"])
def test_usernames_outside_the_rules_are_refused(raw: str) -> None:
    with pytest.raises(InvalidUsername):
        normalize_username(raw)


@given(st.text(max_size=40))
def test_a_normalised_username_is_always_a_fixed_point(raw: str) -> None:
    try:
        name = normalize_username(raw)
    except InvalidUsername:
        return
    assert normalize_username(name) == name


@pytest.mark.parametrize("password", ["1234567", "a" * 129, "aaaaaaaaaa"])
def test_weak_or_huge_passwords_are_refused(password: str) -> None:
    with pytest.raises(InvalidPassword):
        check_password(password)


def test_display_name_defaults_to_the_username_and_must_be_printable() -> None:
    assert normalize_display_name(None, "ada") == "ada"
    assert normalize_display_name("  Ada L. ", "ada") == "Ada L."
    for bad in ["", "   ", "x" * 65, "bell\a"]:
        with pytest.raises(InvalidDisplayName):
            normalize_display_name(bad, "ada")


def test_a_session_is_active_until_revoked_or_expired() -> None:
    session = Session("s", "u", NOW, NOW + timedelta(days=1))
    assert session.is_active(NOW)
    assert not session.is_active(NOW + timedelta(days=1))
    revoked = session.revoke(NOW, RevocationReason.LOGOUT)
    assert not revoked.is_active(NOW)
    assert revoked.revoke(NOW + timedelta(hours=1), RevocationReason.REFRESH_TOKEN_REUSED) == revoked
