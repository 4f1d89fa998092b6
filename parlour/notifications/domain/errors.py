"""The notifications service's errors (the decision half), each with a stable code (docs/errors.md)::

    ParlourError (parlour.common.errors)
    └── Conflict
        └── TooManyMutes    too_many_mutes    the per-user limit of muted chats

A malformed chat id never reaches the use cases: the route's schema refuses it as `invalid_input` (422).
"""

from __future__ import annotations

from parlour.common.errors import Conflict
from parlour.notifications.domain.model import MAX_MUTES


class TooManyMutes(Conflict):
    """A user who muted as many chats as one user may: a mute is a row of theirs, so it is bounded."""

    code = "too_many_mutes"
    default_message = f"You muted {MAX_MUTES} chats, as many as one user may: unmute one first."
