"""Resume on the gateway side: hold live message frames while a resume is in flight, release the right ones.

The model (docs/subsystems/delivery-and-resume.md): the client sends `resume` with its last `seq` per chat;
messaging answers one batch for that session ending with `resume.done {chats: {chat_id: last_seq_included}}`.
Live events keep arriving meanwhile, on the same route, in any interleaving with the answer. So while a
resume is in flight the gateway holds the session's live `message.*` frames; when `resume.done` arrives it
releases, in arrival order, every held frame except a `message.new` the answer already carried
(`seq <= included` for its chat). It keeps `included` afterwards, so a live `message.new` published before
the answer but delivered after it is still recognised as a duplicate. Edits and deletions are always
released: applying one twice is harmless, dropping one would lose it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from parlour.gateway.domain.protocol import MESSAGE_NEW, FrameInfo


class Admission(Enum):
    """What to do with a live frame for a session."""

    SEND = "send"  # write it now
    HELD = "held"  # a resume is in flight: kept until `resume.done`
    DUPLICATE = "duplicate"  # the resume answer already carried it: drop
    OVERFLOW = "overflow"  # a resume is in flight and the hold buffer is full: the session must close


@dataclass(frozen=True, slots=True)
class Held:
    frame: bytes
    info: FrameInfo


class ResumeGate:
    """The hold-and-release logic of one session; pure, no I/O."""

    __slots__ = ("_held", "_included", "_limit", "started_at")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the hold buffer must take at least one frame")
        self._limit = limit
        self._held: list[Held] | None = None  # None: no resume in flight
        self._included: dict[str, int] = {}
        self.started_at = 0.0

    @property
    def resuming(self) -> bool:
        return self._held is not None

    @property
    def needs_info(self) -> bool:
        """Whether `admit` reads the frame's info (a resume is in flight, or one has completed)."""
        return self._held is not None or bool(self._included)

    def begin(self, now: float) -> bool:
        """Start holding; False if a resume is already in flight."""
        if self._held is not None:
            return False
        self._held = []
        self.started_at = now
        return True

    def admit(self, frame: bytes, info: FrameInfo | None) -> Admission:
        """Decide about one live frame (not part of a resume answer)."""
        if info is None:
            return Admission.SEND
        if self._held is not None and info.is_message:
            if len(self._held) >= self._limit:
                return Admission.OVERFLOW
            self._held.append(Held(frame, info))
            return Admission.HELD
        return Admission.DUPLICATE if self._already_included(info) else Admission.SEND

    def complete(self, included: Mapping[str, int]) -> list[bytes]:
        """`resume.done` arrived: remember what it included; the held frames to write now, in order."""
        for chat_id, seq in included.items():
            self._included[chat_id] = max(seq, self._included.get(chat_id, 0))
        held, self._held = self._held or [], None
        return [item.frame for item in held if not self._already_included(item.info)]

    def abandon(self) -> None:
        """Forget held frames (the session is closing)."""
        self._held = None

    def _already_included(self, info: FrameInfo) -> bool:
        if info.type != MESSAGE_NEW or info.chat_id is None or info.seq is None:
            return False
        return info.seq <= self._included.get(info.chat_id, 0)
