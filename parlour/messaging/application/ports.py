"""What the messaging use cases need from the outside world."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from parlour.common.unit_of_work import UnitOfWork as BaseUnitOfWork
from parlour.messaging.domain.messages import Event, OnBehalf
from parlour.messaging.domain.model import Chat, ChatKind, Member, Message, Role


class ConcurrentWrite(Exception):
    """A concurrent transaction took a unique key first; running the unit of work again finds its row."""


@dataclass(frozen=True, slots=True)
class ChatCursor:
    """Where a page of the chat list ended: chats are listed by last activity, newest first."""

    last_activity_at: datetime
    chat_id: str


@dataclass(frozen=True, slots=True)
class ChatSummary:
    """One row of a user's chat list."""

    chat: Chat
    role: Role
    read_seq: int
    last_message: Message | None

    @property
    def unread(self) -> int:
        # Own messages move the sender's cursor, so this counts what others wrote since the cursor.
        return max(0, self.chat.last_seq - self.read_seq)


@dataclass(frozen=True, slots=True)
class ProjectedUser:
    """A user as messaging knows them, from auth's `user.registered` events (until `user.deleted`)."""

    id: str
    username: str
    display_name: str


class ChatRepository(ABC):
    """Chats, their sequence counters and their membership versions."""

    @abstractmethod
    async def add(self, chat: Chat) -> bool:
        """Store a new chat; False (and nothing stored) when a direct chat of the same pair exists."""

    @abstractmethod
    async def get(self, chat_id: str) -> Chat | None:
        """The chat with this id."""

    @abstractmethod
    async def by_direct_key(self, key: str) -> Chat | None:
        """The direct chat of this pair (`direct_key`)."""

    @abstractmethod
    async def member_version(self, chat_id: str, *, lock: bool = False) -> tuple[ChatKind, int, str | None] | None:
        """The chat's kind, membership version and title; with `lock`, the chat row stays locked until
        commit."""

    @abstractmethod
    async def member_versions(
        self, chat_ids: Sequence[str], *, lock: bool = False
    ) -> dict[str, tuple[ChatKind, int, str | None]]:
        """`member_version` of many chats in one statement (absent ids are left out); `lock` locks their
        rows in id order, so two writers of overlapping chats cannot deadlock."""

    @abstractmethod
    async def take_seqs(self, counts: Mapping[str, int], at: datetime) -> dict[str, int]:
        """Atomically take each chat's next `counts[chat]` sequence numbers (returns the last one per chat)
        and mark the chats active at `at`, in one statement; the numbers go back if the transaction rolls
        back."""

    @abstractmethod
    async def bump_member_version(self, chat_id: str) -> int:
        """Record a membership change (locking the chat row); returns the new version."""

    @abstractmethod
    async def rename(self, chat_id: str, title: str) -> None:
        """Change a group's title."""

    @abstractmethod
    async def summaries(self, user_id: str, limit: int, after: ChatCursor | None) -> list[ChatSummary]:
        """The user's chats by last activity (newest first), starting after `after`."""


class MemberRepository(ABC):
    """Memberships: who is in which chat, with which role, having read how far."""

    @abstractmethod
    async def add(self, member: Member) -> None:
        """Store a membership (the caller checked the user is not a member yet)."""

    @abstractmethod
    async def of_chat(self, chat_id: str) -> list[Member]:
        """The chat's members, earliest first."""

    @abstractmethod
    async def of_chats(self, chat_ids: Sequence[str]) -> dict[str, list[Member]]:
        """`of_chat` for many chats in one statement."""

    @abstractmethod
    async def remove(self, chat_id: str, user_id: str) -> None:
        """End a membership."""

    @abstractmethod
    async def set_role(self, chat_id: str, user_id: str, role: Role) -> None:
        """Change a member's role."""

    @abstractmethod
    async def advance_reads(self, moves: Sequence[ReadMove]) -> None:
        """Move each member's `read_seq` to its `seq` where that is forward (never back), in one statement;
        of several moves of one member, the furthest counts."""


class MessageRepository(ABC):
    """Messages by chat and seq, and by sender and client id (idempotency)."""

    @abstractmethod
    async def add_many(self, messages: Sequence[Message]) -> None:
        """Store new messages (their seqs taken with `ChatRepository.take_seqs` in the same transaction).

        Raises `ConcurrentWrite` when another transaction stored the same sender and client id first.
        """

    @abstractmethod
    async def by_client_ids(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Message]:
        """The messages these `(sender_id, client_id)` pairs already sent, by pair."""

    @abstractmethod
    async def get(self, chat_id: str, message_id: str) -> Message | None:
        """A message of the chat by id, with its reactions and what it replies to."""

    @abstractmethod
    async def by_ids(self, message_ids: Sequence[str]) -> dict[str, Message]:
        """The messages with these ids, whatever their chat, by id (without reactions or replies: what a
        quote of them needs)."""

    @abstractmethod
    async def save(self, message: Message) -> None:
        """Store a message's new body, edit time or deletion (which takes its reactions away)."""

    @abstractmethod
    async def set_reaction(self, message_id: str, user_id: str, emoji: str, *, add: bool, at: datetime) -> None:
        """Store `user_id`'s `emoji` on the message (`add`, at `at`), or remove it."""

    @abstractmethod
    async def page(self, chat_id: str, *, after: int | None, before: int | None, limit: int) -> list[Message]:
        """Up to `limit` messages with `after < seq < before`, in seq order, with their reactions and what
        they reply to: the first ones when `after` is given, else the last ones (closest to `before`, or
        the newest)."""


class UserRepository(ABC):
    """The users projection, fed by auth's events."""

    @abstractmethod
    async def add_many(self, users: Sequence[ProjectedUser]) -> None:
        """Record users in one statement (an id already known, or repeated, is ignored)."""

    @abstractmethod
    async def remove_many(self, user_ids: Sequence[str]) -> None:
        """Forget these users (their accounts were deleted): nobody can add or mention them any more."""

    @abstractmethod
    async def known(self, user_ids: Sequence[str]) -> set[str]:
        """Which of these ids are known users."""

    @abstractmethod
    async def ids_by_username(self, usernames: Sequence[str]) -> dict[str, str]:
        """The ids of the known users with these usernames, by username."""


class OutboxRepository(ABC):
    """Events committed with the work that caused them, until a relay has published them."""

    @abstractmethod
    async def add(self, writer: str, payload: bytes) -> int:
        """Store one entry (the events of one commit) written by `writer`; returns its id (ids only grow)."""

    @abstractmethod
    async def remove(self, entry_ids: Sequence[int]) -> None:
        """Forget published entries."""

    @abstractmethod
    async def orphans(self, live_writers: Sequence[str], limit: int) -> list[OutboxEntry]:
        """Up to `limit` entries of writers not in `live_writers`, oldest first. On PostgreSQL they stay
        locked until the transaction ends and other relays skip them."""

    @abstractmethod
    async def of_writer(self, writer: str, limit: int) -> list[OutboxEntry]:
        """Up to `limit` entries of `writer`, oldest first."""


class UnitOfWork(BaseUnitOfWork):
    """One transaction over the messaging repositories; rolled back unless committed."""

    chats: ChatRepository
    members: MemberRepository
    messages: MessageRepository
    users: UserRepository
    outbox: OutboxRepository


class UnitOfWorkFactory(ABC):
    """Opens units of work; read-only ones may run beside writers (SQLite takes no write lock)."""

    @abstractmethod
    def __call__(self, *, write: bool = True) -> UnitOfWork: ...


class UserLookup(ABC):
    """Asks auth about a user the projection does not know yet (its event is still on the way)."""

    @abstractmethod
    async def find(self, user_id: str, caller: OnBehalf | None) -> ProjectedUser | None:
        """The user, or None if auth has no such user. Raises `Unavailable` if auth cannot answer."""


@dataclass(frozen=True, slots=True)
class Publication:
    """One bus message to publish: its routing keys, type and encoded body, and the trace context of the
    work that made it (empty while tracing is off), kept with it in the outbox."""

    routing_keys: tuple[str, ...]
    type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class EventChannel(ABC):
    """How events become bus messages, and how those travel (adapter: the bus)."""

    @abstractmethod
    def render(self, events: Sequence[Event]) -> list[Publication]:
        """The bus messages for `events`: a constant number, whatever the number of events and recipients."""

    @abstractmethod
    def pack(self, publications: Sequence[Publication]) -> bytes:
        """`publications` as one outbox payload."""

    @abstractmethod
    def unpack(self, payload: bytes) -> list[Publication]:
        """The publications of an outbox payload."""

    @abstractmethod
    async def publish(self, publications: Sequence[Publication], ref: str | None) -> None:
        """Publish, each confirmed; `ref` names the entry (stable message ids on a retry; None: fresh ids).
        Raises `Unavailable` when the bus cannot take them."""


class WriterRegistry(ABC):
    """Which relays are alive: an entry of a writer that is not is an orphan to publish."""

    @abstractmethod
    async def heartbeat(self, writer: str, ttl: float) -> None:
        """`writer` is alive for the next `ttl` seconds."""

    @abstractmethod
    async def live(self) -> set[str]:
        """The writers alive now."""

    @abstractmethod
    async def leave(self, writer: str) -> None:
        """`writer` stops."""


class EventPublisher(ABC):
    """Commits a unit of work together with its events, and sends the events on their way after it."""

    @abstractmethod
    async def commit(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        """Record `events` in `uow`'s transaction, commit it, then publish them. A bus failure after the
        commit is not the caller's: the events wait in the outbox and leave when the bus is back."""

    @abstractmethod
    async def send(self, events: Sequence[Event]) -> None:
        """Publish events that change nothing stored (typing, answers to refused commands) right away."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A stored entry: its id and payload."""

    id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ReadMove:
    """Move `user_id`'s read cursor in `chat_id` forward to `seq`."""

    chat_id: str
    user_id: str
    seq: int
