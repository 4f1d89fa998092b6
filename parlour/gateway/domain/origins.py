"""The Origin check of the WebSocket handshake (a defence against cross-site WebSocket hijacking).

Browsers always send `Origin`; other clients (apps, scripts) usually do not and cannot be driven by a
hostile page, so a missing Origin is allowed. A present one must be one of the configured origins: the
deployment's public origins (where its web client is served) and the extra allowlist; `*` allows any.

Origins compare as scheme, host and port (the default port made explicit), so `https://chat.example`
is not `http://chat.example`. The request's `Host` header is never the reference: a DNS-rebinding page
(`http://evil.example:8000`, resolved to the server) sends a `Host` that matches its own Origin.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

ANY_ORIGIN = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str | None:
    """`scheme://host:port` in lower case with the port explicit; None unless an http(s) origin."""
    try:
        parts = urlsplit(value.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in {"", "/"}:
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port or _DEFAULT_PORTS[parts.scheme]}"


def origin_allowed(origin: str | None, allowed: Collection[str]) -> bool:
    """Whether a handshake with this `Origin` may proceed, given the configured origins `allowed`.

    The request's `Host` is deliberately not an input: a DNS-rebinding page sends a `Host` that matches
    its own `Origin`.
    """
    if origin is None:
        return True
    if ANY_ORIGIN in allowed:
        return True
    normalized = normalize_origin(origin)
    return normalized is not None and normalized in {normalize_origin(entry) for entry in allowed}
