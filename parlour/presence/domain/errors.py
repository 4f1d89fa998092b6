"""The presence service's errors, each with a stable code (docs/errors.md). The tree::

    ParlourError (parlour.common.errors)
    └── NotFound
        └── UserNotFound    user_not_found    an id that is neither the caller nor a contact, or no user

A malformed `user_ids` (none, more than 500, an id that breaks the id rule) never reaches the use cases:
the route's schema refuses it as `invalid_input` (422), exactly as the OpenAPI document states it.
"""

from __future__ import annotations

from parlour.common.errors import NotFound


class UserNotFound(NotFound):
    """Answered alike for an unknown id and for a user who shares no chat with the caller: a caller
    cannot tell them apart, so presence tells nobody who exists."""

    code = "user_not_found"
    default_message = "unknown user"
