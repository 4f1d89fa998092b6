"""The one error tree every service raises from; transports map it in exactly one place each.

Pure standard library, so any domain may import it. The tree::

    ParlourError                 code "error"
    ├── InvalidInput             the request is malformed or breaks a rule      (HTTP 422)
    ├── Unauthenticated          no, bad or expired credentials                  (HTTP 401)
    ├── Forbidden                authenticated but not allowed                   (HTTP 403)
    ├── NotFound                 absent, or not visible to the caller            (HTTP 404)
    ├── Conflict                 clashes with the current state                  (HTTP 409)
    ├── RateLimited              too many attempts; carries `retry_after`        (HTTP 429)
    └── Unavailable              a dependency is down; try again                 (HTTP 503)

Services subclass a category and give each class a stable `code` (documented in docs/errors.md).
Messages are written for the caller: they say what went wrong and the way out.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ParlourError(Exception):
    """Base of every error Parlour raises on purpose."""

    code: ClassVar[str] = "error"
    default_message: ClassVar[str] = "Something went wrong."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)


class InvalidInput(ParlourError):
    code = "invalid_input"
    default_message = "The request is not valid."


class Unauthenticated(ParlourError):
    code = "unauthenticated"
    default_message = "Authentication is required: send a valid access token."


class Forbidden(ParlourError):
    code = "forbidden"
    default_message = "You are not allowed to do this."


class NotFound(ParlourError):
    code = "not_found"
    default_message = "Nothing is here."


class Conflict(ParlourError):
    code = "conflict"
    default_message = "This clashes with the current state."


class RateLimited(ParlourError):
    """Too many attempts; `retry_after` says in how many seconds to try again."""

    code = "rate_limited"
    default_message = "Too many attempts: wait and try again."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class Unavailable(ParlourError):
    code = "unavailable"
    default_message = "A service Parlour depends on is unavailable: try again shortly."
