"""The notifications service's errors (the decision half), each with a stable code (docs/errors.md)::

    ParlourError (parlour.common.errors)
    └── NotFound
        └── ChatNotFound    chat_not_found    no such chat, or the caller is not a member of it

A malformed chat id never reaches the use cases: the route's schema refuses it as `invalid_input` (422).
"""

from __future__ import annotations

from parlour.common.errors import NotFound


class ChatNotFound(NotFound):
    """Answered alike for a chat that does not exist and for one the caller is not in (as messaging does):
    muting tells nobody which chats exist."""

    code = "chat_not_found"
    default_message = "No such chat, or you are not a member of it."
