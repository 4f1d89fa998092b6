"""The Origin check of the WebSocket handshake (a defence against cross-site WebSocket hijacking).

Browsers always send `Origin`; other clients (apps, scripts) usually do not and cannot be driven by a
hostile page, so a missing Origin is allowed. A present one must be the server's own origin (same host
and port as the request's `Host`), or be on the configured allowlist; `*` on the list allows any.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

ANY_ORIGIN = "*"


def origin_allowed(origin: str | None, host: str | None, allowed: Collection[str]) -> bool:
    """Whether a handshake with this `Origin` and `Host` may proceed."""
    if origin is None:
        return True
    normalized = origin.strip().rstrip("/").lower()
    if ANY_ORIGIN in allowed or normalized in {entry.rstrip("/").lower() for entry in allowed}:
        return True
    if normalized == "null" or host is None:
        return False
    parts = urlsplit(normalized)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return False
    return _with_port(parts.netloc, parts.scheme) == _with_port(host.strip().lower(), parts.scheme)


def _with_port(netloc: str, scheme: str) -> str:
    has_port = "]:" in netloc if netloc.startswith("[") else ":" in netloc  # [::1]:8000 is IPv6 with a port
    if has_port:
        return netloc
    return f"{netloc}:{443 if scheme == 'https' else 80}"
