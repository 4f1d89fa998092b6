"""The presence service's errors, each with a stable code (docs/errors.md). The tree::

ParlourError (parlour.common.errors)
├── InvalidInput
│   └── InvalidUserIds     user_ids_invalid   no ids, more than the limit, or an id that breaks the id rule
└── NotFound
    └── UserNotFound       user_not_found     an id that is neither the caller nor a contact, or no user
"""

from __future__ import annotations

from parlour.common.errors import InvalidInput, NotFound


class UserNotFound(NotFound):
    """Answered alike for an unknown id and for a user who shares no chat with the caller: a caller
    cannot tell them apart, so presence tells nobody who exists."""

    code = "user_not_found"
    default_message = "unknown user"


class InvalidUserIds(InvalidInput):
    code = "user_ids_invalid"
    default_message = "Ask for 1 to 500 comma-separated user ids, each of 1-64 letters, digits, '_' or '-'."
