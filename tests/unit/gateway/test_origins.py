"""The handshake's Origin check: against the configured origins, with the scheme, never against Host."""

from __future__ import annotations

import pytest

from parlour.gateway.domain.origins import normalize_origin, origin_allowed

PUBLIC = ["https://chat.example", "http://127.0.0.1:8000"]


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        (None, PUBLIC, True),  # not a browser
        ("https://chat.example", PUBLIC, True),
        ("https://chat.example:443", PUBLIC, True),
        ("HTTPS://Chat.Example/", PUBLIC, True),
        ("http://127.0.0.1:8000", PUBLIC, True),
        ("http://chat.example", PUBLIC, False),  # the scheme counts
        ("https://chat.example:8443", PUBLIC, False),
        ("http://evil.example:8000", PUBLIC, False),  # DNS rebinding: its Host would match its Origin
        ("http://localhost:8000", PUBLIC, False),
        ("null", PUBLIC, False),
        ("file://", PUBLIC, False),
        ("https://chat.example/path", PUBLIC, False),
        ("http://chat.example:99999", PUBLIC, False),
        ("http://app.example", ["http://app.example/"], True),
        ("http://other.example", ["http://app.example"], False),
        ("http://anything.example", ["*"], True),
        ("http://[::1]:8000", ["http://[::1]:8000"], True),
        ("http://chat.example", [], False),
    ],
)
def test_origin_must_be_a_configured_origin(origin: str | None, allowed: list[str], expected: bool) -> None:
    assert origin_allowed(origin, allowed) is expected


def test_origins_normalise_to_scheme_host_and_explicit_port() -> None:
    assert normalize_origin("HTTP://Chat.Example") == "http://chat.example:80"
    assert normalize_origin("https://chat.example:443/") == "https://chat.example:443"
    assert normalize_origin("ws://chat.example") is None
