"""The handshake's Origin check."""

from __future__ import annotations

import pytest

from parlour.gateway.domain.origins import origin_allowed


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        (None, "chat.example:8000", [], True),  # not a browser
        ("http://chat.example:8000", "chat.example:8000", [], True),
        ("https://chat.example", "chat.example", [], True),
        ("https://chat.example", "chat.example:443", [], True),
        ("http://chat.example", "chat.example:80", [], True),
        ("HTTP://Chat.Example:8000/", "chat.example:8000", [], True),
        ("http://evil.example", "chat.example:8000", [], False),
        ("http://chat.example:9000", "chat.example:8000", [], False),
        ("https://chat.example", "chat.example:80", [], False),
        ("null", "chat.example", [], False),
        ("file://", "chat.example", [], False),
        ("http://app.example", "api.example", ["http://app.example"], True),
        ("http://app.example", "api.example", ["http://app.example/"], True),
        ("http://other.example", "api.example", ["http://app.example"], False),
        ("http://anything.example", "api.example", ["*"], True),
        ("http://[::1]:8000", "[::1]:8000", [], True),
        ("http://chat.example", None, [], False),
    ],
)
def test_origin_must_be_the_server_itself_or_allowed(
    origin: str | None, host: str | None, allowed: list[str], expected: bool
) -> None:
    assert origin_allowed(origin, host, allowed) is expected
