"""The shape limits every service agrees on, declared once and used by the structs of this package."""

from __future__ import annotations

from functools import cache
from typing import Annotated

import msgspec

# Chat, message, user and session ids; client ids too (a client's own retry key).
ID_MAX_CHARACTERS = 64
# A reaction's emoji, as sent: messaging knows which ones it offers (a few code points each).
EMOJI_MAX_CHARACTERS = 16
# A `resume` lists at most this many chats (a client keeps far fewer).
MAX_RESUME_CHATS = 10_000
# JavaScript's largest safe integer: a seq a browser can hold exactly.
SEQ_MAX = 2**53

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX_CHARACTERS)]
ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX_CHARACTERS)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=SEQ_MAX)]
Emoji = Annotated[str, msgspec.Meta(min_length=1, max_length=EMOJI_MAX_CHARACTERS)]


def string_or_none(raw: msgspec.Raw) -> str | None:
    """A JSON value read without building it (a `Raw` field): the string it is, else None."""
    if not bytes(raw).startswith(b'"'):
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, str) else None


@cache
def struct_tag(cls: type[msgspec.Struct]) -> str:
    """The `type` tag of a tagged struct class (msgspec builds its config object anew on each read)."""
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str), f"{cls.__name__} is not a tagged struct"
    return tag


class FrameEnvelope(msgspec.Struct):
    """What a frame that does not decode is read as, to say what it was: its `type` and `client_id`, kept
    raw (read with `string_or_none`), so a deeply nested value is skipped, never built."""

    type: msgspec.Raw = msgspec.Raw(b"null")
    client_id: msgspec.Raw = msgspec.Raw(b"null")
