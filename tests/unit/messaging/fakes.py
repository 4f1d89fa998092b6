"""In-memory messaging repositories for unit tests of the use cases: dicts, copied on commit."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Self

from parlour.messaging.application.ports import (
    ChatCursor,
    ChatRepository,
    ChatSummary,
    ConcurrentWrite,
    EventPublisher,
    MemberRepository,
    MessageRepository,
    OutboxEntry,
    OutboxRepository,
    ProjectedUser,
    ReadMove,
    UnitOfWork,
    UnitOfWorkFactory,
    UserLookup,
    UserRepository,
)
from parlour.messaging.domain.messages import Event, OnBehalf
from parlour.messaging.domain.model import Chat, ChatKind, Member, Message, Role


@dataclass
class State:
    chats: dict[str, Chat] = field(default_factory=dict)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    users: dict[str, ProjectedUser] = field(default_factory=dict)
    outbox: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    outbox_ids: int = 0


class _Chats(ChatRepository):
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, chat: Chat) -> bool:
        if chat.direct_key and any(c.direct_key == chat.direct_key for c in self.s.chats.values()):
            return False
        self.s.chats[chat.id] = chat
        return True

    async def get(self, chat_id: str) -> Chat | None:
        return self.s.chats.get(chat_id)

    async def by_direct_key(self, key: str) -> Chat | None:
        return next((c for c in self.s.chats.values() if c.direct_key == key), None)

    async def member_version(self, chat_id: str, *, lock: bool = False) -> tuple[ChatKind, int, str | None] | None:
        chat = self.s.chats.get(chat_id)
        return (chat.kind, chat.member_version, chat.title) if chat else None

    async def member_versions(
        self, chat_ids: Sequence[str], *, lock: bool = False
    ) -> dict[str, tuple[ChatKind, int, str | None]]:
        chats = self.s.chats
        return {c: (chats[c].kind, chats[c].member_version, chats[c].title) for c in chat_ids if c in chats}

    async def take_seqs(self, counts: Mapping[str, int], at: datetime) -> dict[str, int]:
        last = {}
        for chat_id, count in counts.items():
            chat = self.s.chats.get(chat_id)
            if chat is None:
                continue
            self.s.chats[chat_id] = replace(chat, last_seq=chat.last_seq + count, last_activity_at=at)
            last[chat_id] = chat.last_seq + count
        return last

    async def bump_member_version(self, chat_id: str) -> int:
        chat = self.s.chats[chat_id]
        self.s.chats[chat_id] = replace(chat, member_version=chat.member_version + 1)
        return chat.member_version + 1

    async def rename(self, chat_id: str, title: str) -> None:
        self.s.chats[chat_id] = replace(self.s.chats[chat_id], title=title)

    async def summaries(self, user_id: str, limit: int, after: ChatCursor | None) -> list[ChatSummary]:
        rows = []
        for (chat_id, member_id), member in self.s.members.items():
            if member_id != user_id:
                continue
            chat = self.s.chats[chat_id]
            if after and (chat.last_activity_at, chat.id) >= (after.last_activity_at, after.chat_id):
                continue
            last = next((m for m in self.s.messages.values() if m.chat_id == chat_id and m.seq == chat.last_seq), None)
            rows.append(ChatSummary(chat, member.role, member.read_seq, last))
        rows.sort(key=lambda row: (row.chat.last_activity_at, row.chat.id), reverse=True)
        return rows[:limit]


class _Members(MemberRepository):
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, member: Member) -> None:
        self.s.members[member.chat_id, member.user_id] = member

    async def of_chat(self, chat_id: str) -> list[Member]:
        return [m for (c, _), m in self.s.members.items() if c == chat_id]

    async def of_chats(self, chat_ids: Sequence[str]) -> dict[str, list[Member]]:
        found = {chat_id: await self.of_chat(chat_id) for chat_id in chat_ids}
        return {chat_id: members for chat_id, members in found.items() if members}

    async def remove(self, chat_id: str, user_id: str) -> None:
        self.s.members.pop((chat_id, user_id), None)

    async def set_role(self, chat_id: str, user_id: str, role: Role) -> None:
        self.s.members[chat_id, user_id] = replace(self.s.members[chat_id, user_id], role=role)

    async def advance_reads(self, moves: Sequence[ReadMove]) -> None:
        for move in moves:
            member = self.s.members.get((move.chat_id, move.user_id))
            if member is not None and member.read_seq < move.seq:
                self.s.members[move.chat_id, move.user_id] = replace(member, read_seq=move.seq)


class _Messages(MessageRepository):
    def __init__(self, state: State) -> None:
        self.s = state

    async def add_many(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if await self.by_client_ids([(message.sender_id, message.client_id)]):
                raise ConcurrentWrite()
            self.s.messages[message.id] = message

    async def by_client_ids(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Message]:
        wanted = set(keys)
        return {(m.sender_id, m.client_id): m for m in self.s.messages.values() if (m.sender_id, m.client_id) in wanted}

    async def get(self, chat_id: str, message_id: str) -> Message | None:
        message = self.s.messages.get(message_id)
        return self._quoting(message) if message and message.chat_id == chat_id else None

    def _quoting(self, message: Message) -> Message:
        # What a reply shows of the message it answers is that message as it is now.
        if message.reply_to is None:
            return message
        return replace(message, reply_to=self.s.messages[message.reply_to.message_id].quote())

    async def save(self, message: Message) -> None:
        self.s.messages[message.id] = message

    async def by_ids(self, message_ids: Sequence[str]) -> dict[str, Message]:
        return {i: replace(self.s.messages[i], reply_to=None) for i in message_ids if i in self.s.messages}

    async def set_reaction(self, message_id: str, user_id: str, emoji: str, *, add: bool, at: datetime) -> None:
        message = self.s.messages[message_id]
        self.s.messages[message_id] = message.react(user_id, emoji, add=add)

    async def page(self, chat_id: str, *, after: int | None, before: int | None, limit: int) -> list[Message]:
        found = sorted(
            (m for m in self.s.messages.values() if m.chat_id == chat_id),
            key=lambda m: m.seq,
        )
        found = [m for m in found if (after is None or m.seq > after) and (before is None or m.seq < before)]
        return [self._quoting(m) for m in (found[:limit] if after is not None else found[-limit:])]


class _Users(UserRepository):
    def __init__(self, state: State) -> None:
        self.s = state

    async def add_many(self, users: Sequence[ProjectedUser]) -> None:
        for user in users:
            self.s.users.setdefault(user.id, user)

    async def remove_many(self, user_ids: Sequence[str]) -> None:
        for user_id in user_ids:
            self.s.users.pop(user_id, None)

    async def known(self, user_ids: Sequence[str]) -> set[str]:
        return {user_id for user_id in user_ids if user_id in self.s.users}

    async def ids_by_username(self, usernames: Sequence[str]) -> dict[str, str]:
        wanted = set(usernames)
        return {user.username: user.id for user in self.s.users.values() if user.username in wanted}


class _Outbox(OutboxRepository):
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, writer: str, payload: bytes) -> int:
        self.s.outbox_ids += 1
        self.s.outbox[self.s.outbox_ids] = (writer, payload)
        return self.s.outbox_ids

    async def remove(self, entry_ids: Sequence[int]) -> None:
        for entry_id in entry_ids:
            self.s.outbox.pop(entry_id, None)

    async def orphans(self, live_writers: Sequence[str], limit: int) -> list[OutboxEntry]:
        live = set(live_writers)
        found = [
            OutboxEntry(i, payload) for i, (writer, payload) in sorted(self.s.outbox.items()) if writer not in live
        ]
        return found[:limit]

    async def of_writer(self, writer: str, limit: int) -> list[OutboxEntry]:
        found = [OutboxEntry(i, payload) for i, (w, payload) in sorted(self.s.outbox.items()) if w == writer]
        return found[:limit]


class MemoryUnitOfWork(UnitOfWork):
    """Works on a copy of the state; `commit` makes the copy the state."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def __aenter__(self) -> Self:
        self._work = copy.deepcopy(self._store.state)
        self.chats = _Chats(self._work)
        self.members = _Members(self._work)
        self.messages = _Messages(self._work)
        self.users = _Users(self._work)
        self.outbox = _Outbox(self._work)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self._store.state = self._work
        self._store.commits += 1


class MemoryStore(UnitOfWorkFactory):
    """The factory of in-memory units of work, holding the committed state."""

    def __init__(self) -> None:
        self.state = State()
        self.commits = 0

    def __call__(self, *, write: bool = True) -> UnitOfWork:
        return MemoryUnitOfWork(self)


class RecordingPublisher(EventPublisher):
    """Commits, and keeps every publication: one list of events per call."""

    def __init__(self) -> None:
        self.published: list[list[Event]] = []

    async def commit(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        await uow.commit()
        if events:
            self.published.append(list(events))

    async def send(self, events: Sequence[Event]) -> None:
        if events:
            self.published.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.published for event in batch]


class FixedLookup(UserLookup):
    """Auth as a dict: the users it knows."""

    def __init__(self, *user_ids: str) -> None:
        self.users = {user_id: ProjectedUser(user_id, f"user{user_id}", f"User {user_id}") for user_id in user_ids}
        self.asked: list[str] = []

    async def find(self, user_id: str, caller: OnBehalf | None) -> ProjectedUser | None:
        self.asked.append(user_id)
        return self.users.get(user_id)
