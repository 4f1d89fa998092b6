"""The one rule for ids that clients send (user, chat and message ids): 1-64 characters of a safe alphabet.

Every id Parlour makes (a UUID, or hex) fits it. Checked at the edge before an id is used anywhere, and
above all before one goes into a URL: no `/`, `.`, `%`, `?` or `#` can reach a path built from it.
"""

from __future__ import annotations

import re

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    """Whether `value` follows the id rule."""
    return _ID.fullmatch(value) is not None
