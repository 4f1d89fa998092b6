"""The decision rule: who is told about a new message, when, and in what words (pure, no I/O).

docs/subsystems/notifications.md, "The rule":

1. A `message.sent` concerns each member other than the sender who has not muted the chat
   (`recipients`), whatever their status now: presence may not have heard yet that a member just left, so
   whether they are looking is judged when the notification is due (3). Each becomes an `Arrival`.
2. `arrive` folds an arrival into the member's `Pending` state for the chat: the first unsent message
   makes it due after `Timing.delay` (a grace, so someone who reads at once is not told), but never sooner
   than `Timing.window` after the last notification of that chat to that member; later messages join it.
   A repeated or older `seq` (a redelivery) changes nothing. A batch's messages of one chat (a `Run`)
   are folded into each member's state at once by `gather`, with the result of `arrive` over them in
   order: the cost of a batch is per member, not per message times member.
3. When due, `decide` looks again: a member online now, who muted the chat since, who left it, or who has
   read everything is not told (`Outcome`); otherwise one `Notification` names the messages still unread
   (`seq` above the member's read cursor). `settle` then records what happened.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from parlour.notifications.domain.model import ChatKind, Notification

# Statuses (presence's `presence.changed`) in which a member is looking: they are never told.
LOOKING = frozenset({"online"})
# The title of a notification that shows nothing of the chat's content (preview off).
APP_NAME = "Parlour"
UNKNOWN_SENDER = "Someone"


@dataclass(frozen=True, slots=True)
class Timing:
    """`delay`: seconds from a first unsent message until its notification is due; `window`: the least
    seconds between two notifications of one chat to one member."""

    delay: float
    window: float


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message that was sent (messaging's `message.sent`), with what a notification's text needs."""

    chat_id: str
    seq: int
    sender_id: str
    member_ids: tuple[str, ...]
    mentioned_ids: frozenset[str]
    chat_kind: ChatKind
    chat_title: str | None
    preview: str

    def arrival(self, user_id: str) -> Arrival:
        """The message as `user_id` is to hear of it."""
        return Arrival(
            self.chat_id,
            user_id,
            self.seq,
            self.sender_id,
            self.chat_kind,
            self.chat_title,
            self.preview,
            user_id in self.mentioned_ids,
        )


@dataclass(frozen=True, slots=True)
class Arrival:
    """One new message, as one of the members to be told sees it."""

    chat_id: str
    user_id: str
    seq: int
    sender_id: str
    chat_kind: ChatKind
    chat_title: str | None
    preview: str
    mentioned: bool


@dataclass(frozen=True, slots=True)
class Pending:
    """What a member has not been told about a chat yet (`due_at` set: waiting), and when they last were.

    `first_seq`..`last_seq` are the messages gathered since the last notification, `count` how many of
    them concerned the member, `sender_ids` who sent them (the latest last); `preview` and `chat_title`
    are the last message's."""

    chat_id: str
    user_id: str
    first_seq: int = 0
    last_seq: int = 0
    count: int = 0
    sender_ids: tuple[str, ...] = ()
    chat_kind: ChatKind = "group"
    chat_title: str | None = None
    preview: str = ""
    mentioned: bool = False
    due_at: float | None = None
    last_sent_at: float | None = None

    @property
    def waiting(self) -> bool:
        return self.due_at is not None


class Outcome(StrEnum):
    """What became of a due `Pending` (a metrics label, and the reason in the logs)."""

    SENT = "sent"
    LOOKING = "looking"  # online again
    MUTED = "muted"
    LEFT = "left"  # no longer a member
    READ = "read"  # nothing unread


@dataclass(frozen=True, slots=True)
class Circumstances:
    """What is true of the member when their notification is due.

    `read_seq` is None when they are no longer a member; `names` maps sender ids to display names."""

    status: str
    muted: bool
    read_seq: int | None
    preview: bool
    names: Mapping[str, str]


def recipients(member_ids: Sequence[str], senders: Collection[str], muted: Collection[str]) -> list[str]:
    """The members that messages by `senders` may be told to: not muting the chat, each once, and not
    one who sent all of them (nobody is told of their own message)."""
    only = next(iter(senders)) if len(senders) == 1 else None
    return [user_id for user_id in dict.fromkeys(member_ids) if user_id != only and user_id not in muted]


def arrive(pending: Pending, arrival: Arrival, now: float, timing: Timing) -> Pending:
    """`pending` with the new message in it (unchanged for a `seq` it has already seen)."""
    if arrival.seq <= pending.last_seq:
        return pending
    senders = pending.sender_ids if pending.waiting else ()
    merged = replace(
        pending,
        last_seq=arrival.seq,
        sender_ids=(*(s for s in senders if s != arrival.sender_id), arrival.sender_id),
        chat_kind=arrival.chat_kind,
        chat_title=arrival.chat_title,
        preview=arrival.preview,
    )
    if pending.waiting:
        return replace(merged, count=pending.count + 1, mentioned=pending.mentioned or arrival.mentioned)
    due = now + timing.delay
    if pending.last_sent_at is not None:
        due = max(due, pending.last_sent_at + timing.window)
    return replace(merged, first_seq=arrival.seq, count=1, mentioned=arrival.mentioned, due_at=due)


@dataclass(frozen=True, slots=True)
class Run:
    """New messages of one chat with the same members, in `seq` order, each once: what `gather` folds.

    `senders` are their senders by last message (the latest last), `mentioned` everyone any of them
    mentions."""

    messages: tuple[NewMessage, ...]
    senders: tuple[str, ...]
    mentioned: frozenset[str]

    @classmethod
    def of(cls, messages: Sequence[NewMessage]) -> Run:
        """The run of these messages (one chat, the same members): sorted by `seq`, a repeated one once."""
        ordered = tuple({m.seq: m for m in sorted(messages, key=lambda m: m.seq)}.values())
        senders = tuple(dict.fromkeys(m.sender_id for m in reversed(ordered)))[::-1]
        return cls(ordered, senders, frozenset().union(*(m.mentioned_ids for m in ordered)))

    @property
    def chat_id(self) -> str:
        return self.messages[0].chat_id

    @property
    def member_ids(self) -> tuple[str, ...]:
        return self.messages[0].member_ids


def gather(pending: Pending, run: Run, now: float, timing: Timing) -> Pending:
    """`pending` with the run's messages in it: what `arrive` gives for each of them in order (the
    member's own skipped), computed once for the run where the member sent none of it and has seen none
    of it, which is the case of every member but the senders and a redelivery."""
    user_id, first, last = pending.user_id, run.messages[0], run.messages[-1]
    if pending.last_seq >= first.seq or user_id in run.senders:
        for message in run.messages:
            if message.sender_id != user_id:
                pending = arrive(pending, message.arrival(user_id), now, timing)
        return pending
    # One construction: this runs for every member of a busy group in every batch.
    earlier = pending.sender_ids if pending.waiting else ()
    senders = (*(s for s in earlier if s not in run.senders), *run.senders)
    mentioned = user_id in run.mentioned
    if pending.waiting:
        first_seq, count, due = pending.first_seq, pending.count + len(run.messages), pending.due_at
        mentioned = pending.mentioned or mentioned
    else:
        first_seq, count, due = first.seq, len(run.messages), now + timing.delay
        if pending.last_sent_at is not None:
            due = max(due, pending.last_sent_at + timing.window)
    return Pending(
        pending.chat_id,
        user_id,
        first_seq,
        last.seq,
        count,
        senders,
        last.chat_kind,
        last.chat_title,
        last.preview,
        mentioned,
        due,
        pending.last_sent_at,
    )


def unread(pending: Pending, read_seq: int) -> int:
    """How many of the gathered messages lie beyond the member's read cursor."""
    beyond = pending.last_seq - max(read_seq, pending.first_seq - 1)
    return max(0, min(pending.count, beyond))


def decide(pending: Pending, now: Circumstances, at: datetime) -> tuple[Outcome, Notification | None]:
    """Whether a due `pending` becomes a notification now, and which."""
    if now.status in LOOKING:
        return Outcome.LOOKING, None
    if now.muted:
        return Outcome.MUTED, None
    if now.read_seq is None:
        return Outcome.LEFT, None
    count = unread(pending, now.read_seq)
    if count == 0:
        return Outcome.READ, None
    title, body = words(pending, count, now.preview, now.names)
    direct = pending.chat_kind == "direct"
    return Outcome.SENT, Notification(
        id=f"{pending.chat_id}:{pending.user_id}:{pending.last_seq}",
        user_id=pending.user_id,
        chat_id=pending.chat_id,
        chat_kind=pending.chat_kind,
        title=title,
        body=body,
        count=count,
        last_seq=pending.last_seq,
        urgency="high" if pending.mentioned or direct else "normal",
        topic=topic_of(pending.chat_id),
        url=f"/#/chat/{pending.chat_id}",
        created_at=at,
    )


def settle(claimed: Pending, current: Pending, outcome: Outcome, now: float, timing: Timing) -> Pending:
    """The state once a claimed `Pending` has been dealt with (`current`: as it is now, with what arrived
    since the claim): nothing waits, unless newer messages came meanwhile, which wait for their own turn.
    A sent notification starts the window."""
    sent_at = now if outcome is Outcome.SENT else current.last_sent_at
    if current.last_seq <= claimed.last_seq:
        return replace(current, count=0, due_at=None, mentioned=False, preview="", last_sent_at=sent_at)
    due = now + timing.delay if sent_at is None else max(now + timing.delay, sent_at + timing.window)
    newer = max(1, current.count - claimed.count)
    return replace(current, first_seq=claimed.last_seq + 1, count=newer, due_at=due, last_sent_at=sent_at)


def words(pending: Pending, count: int, preview: bool, names: Mapping[str, str]) -> tuple[str, str]:
    """The notification's title and body.

    Preview on: "3 new messages from Ada in Team" over the last message ("Ada: …" in a group); in a
    direct chat "New message from Ada" over the message. Preview off: the app's name over "New message
    in Team" (or "3 new direct messages"): neither the content nor who wrote it."""
    many = f"{count} new messages" if count > 1 else "New message"
    group = pending.chat_kind != "direct"
    where = pending.chat_title or "a group"
    if not preview:
        return APP_NAME, f"{many} in {where}" if group else f"{many.replace('message', 'direct message')}"
    # The latest sender first: they wrote the preview.
    senders = [names.get(s, UNKNOWN_SENDER) for s in reversed(pending.sender_ids)] or [UNKNOWN_SENDER]
    if not group:
        return f"{many} from {senders[0]}", pending.preview
    body = f"{senders[0]}: {pending.preview}" if pending.preview else ""
    return f"{many} from {_listed(senders)} in {where}", body


def _listed(names: Sequence[str]) -> str:
    unique = list(dict.fromkeys(names))
    if len(unique) == 1:
        return unique[0]
    if len(unique) == 2:
        return f"{unique[0]} and {unique[1]}"
    others = len(unique) - 2
    return f"{unique[0]}, {unique[1]} and {others} other{'s' if others > 1 else ''}"


def topic_of(chat_id: str) -> str:
    """The push `Topic` of a chat's notifications (a push service keeps only the newest unread one):
    32 characters of base64url, as RFC 8030 allows."""
    digest = hashlib.sha256(chat_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:32]
