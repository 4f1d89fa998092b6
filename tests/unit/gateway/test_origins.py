"""The handshake's Origin check: against the configured origins, with the scheme, never against Host."""

from __future__ import annotations

import pytest

from parlour.gateway.domain.origins import normalize_origin, origin_allowed

PUBLIC = ["https://chat.example", "http://127.0.0.1:8000"]


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        (None, "chat.example:8000", PUBLIC, True),  # not a browser
        ("https://chat.example", "chat.example", PUBLIC, True),
        ("https://chat.example:443", "anything", PUBLIC, True),
        ("HTTPS://Chat.Example/", "chat.example", PUBLIC, True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", PUBLIC, True),
        ("http://chat.example", "chat.example", PUBLIC, False),  # the scheme counts
        ("https://chat.example:8443", "chat.example:8443", PUBLIC, False),
        ("http://evil.example:8000", "evil.example:8000", PUBLIC, False),  # DNS rebinding: Host matches Origin
        ("http://localhost:8000", "localhost:8000", PUBLIC, False),
        ("null", "chat.example", PUBLIC, False),
        ("file://", "chat.example", PUBLIC, False),
        ("https://chat.example/path", "chat.example", PUBLIC, False),
        ("http://chat.example:99999", "chat.example", PUBLIC, False),
        ("http://app.example", "api.example", ["http://app.example/"], True),
        ("http://other.example", "api.example", ["http://app.example"], False),
        ("http://anything.example", "api.example", ["*"], True),
        ("http://[::1]:8000", "[::1]:8000", ["http://[::1]:8000"], True),
        ("http://chat.example", None, [], False),
    ],
)
def test_origin_must_be_a_configured_origin(
    origin: str | None, host: str | None, allowed: list[str], expected: bool
) -> None:
    assert origin_allowed(origin, host, allowed) is expected


def test_origins_normalise_to_scheme_host_and_explicit_port() -> None:
    assert normalize_origin("HTTP://Chat.Example") == "http://chat.example:80"
    assert normalize_origin("https://chat.example:443/") == "https://chat.example:443"
    assert normalize_origin("ws://chat.example") is None
