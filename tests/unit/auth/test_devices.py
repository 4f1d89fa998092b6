"""A session's device, named from its User-Agent for the sessions list."""

from __future__ import annotations

import pytest

from parlour.auth.domain.model import describe_device

CHROMIUM_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36 Edg/131.0.0.0"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
)
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0"


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (CHROMIUM_LINUX, "Chrome on Linux"),
        (EDGE_WINDOWS, "Edge on Windows"),
        (SAFARI_MAC, "Safari on macOS"),
        (FIREFOX_ANDROID, "Firefox on Android"),
        ("curl/8.5.0", "curl/8.5.0"),
        ("", "Unknown device"),
        (None, "Unknown device"),
    ],
)
def test_a_browser_is_named_with_its_system_and_a_program_by_its_own_token(user_agent: str | None, device: str) -> None:
    assert describe_device(user_agent) == device
