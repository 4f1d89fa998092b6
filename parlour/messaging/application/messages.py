"""The message use cases: send, edit, delete, react, mark read, type, sync, read history.

Each command handler runs inside a unit of work its caller opened (one per REST request, one per batch
of bus commands: group commit) and appends the events to publish after the commit to `out`. Every check
that can refuse a command comes before its first write, so a refused command leaves the shared
transaction as it found it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from parlour.common.clock import Clock
from parlour.common.errors import ParlourError
from parlour.messaging.application.access import MembershipCache
from parlour.messaging.application.ports import ChatCursor, ChatSummary, ReadMove, UnitOfWork, UnitOfWorkFactory
from parlour.messaging.domain.errors import ClientIdReused, InvalidCommand, InvalidReplyTarget, MessageNotFound
from parlour.messaging.domain.messages import (
    CommandRejected,
    DeleteMessage,
    EditMessage,
    Event,
    MarkRead,
    MessageAcknowledged,
    MessageDeleted,
    MessageEdited,
    MessageReacted,
    MessageSent,
    ReactToMessage,
    ReadCursorMoved,
    RejectCommand,
    RelayTyping,
    SendMessage,
    Sync,
    Synced,
    SyncedChat,
    UserTyped,
)
from parlour.messaging.domain.model import (
    ChatView,
    Members,
    Message,
    Role,
    check_body,
    check_client_id,
    mentioned_usernames,
)
from parlour.messaging.domain.policy import enforce, may_delete, may_edit, may_react, may_read, may_send

HISTORY_LIMIT_MAX = 200
SYNC_CHAT_LIMIT = 500
# Bounds one sync answer (one bus message); chats past it are reported truncated, to be paged over REST.
SYNC_TOTAL_LIMIT = 5_000
SYNC_CHATS_PAGE = 1_000


Refused = Callable[[SendMessage, ParlourError], None]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    messages: list[Message]
    has_more: bool  # more messages lie beyond the page, in the direction it was read


def _role(members: Members | None, user_id: str) -> Role | None:
    return members.role_of(user_id) if members is not None else None


def new_id() -> str:
    """A fresh message or chat id."""
    return str(uuid.uuid4())


class MessageHandlers:
    """One method per message command or query; the PIP and the clock come in through the constructor."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        access: MembershipCache,
        clock: Clock,
        ids: Callable[[], str] = new_id,
    ) -> None:
        self._uow = unit_of_work
        self._access = access
        self._clock = clock
        self._ids = ids

    async def send_message(self, uow: UnitOfWork, command: SendMessage, out: list[Event]) -> Message:
        """Store a message at the chat's next seq, or find the one this client id already sent."""
        (outcome,) = await self.send_messages(uow, [command], out)
        if isinstance(outcome, ParlourError):
            raise outcome
        return outcome

    async def send_messages(
        self, uow: UnitOfWork, commands: Sequence[SendMessage], out: list[Event], refused: Refused | None = None
    ) -> list[Message | ParlourError]:
        """Send many at once (group commit): a constant number of statements, whatever the chats.

        Each outcome is the message (new, or the one its client id already sent) or the refusal, which
        goes to `refused` in command order with the events of the others. A new message is announced to
        the chat's members and acked to its sender's connection; a repeated client id is only acked.
        """
        await self._access.verify_many(uow, sorted({command.chat_id for command in commands}), lock=True)
        replied = await uow.messages.by_ids(sorted({c.reply_to for c in commands if c.reply_to is not None}))
        outcomes: dict[int, Message | ParlourError] = {}
        admitted: list[int] = []
        for index, command in enumerate(commands):
            try:
                await self._admit(uow, command, replied)
                admitted.append(index)
            except ParlourError as error:
                outcomes[index] = error
        stored, created = await self._store(uow, [(index, commands[index]) for index in admitted], replied)
        outcomes |= stored
        mentions = await self._mentions(uow, {index: commands[index] for index in created})
        ordered = [outcomes[index] for index in range(len(commands))]
        for index, (command, outcome) in enumerate(zip(commands, ordered, strict=True)):
            if isinstance(outcome, Message):
                new = mentions.get(index, ()) if index in created else None
                await self._announce(uow, command, outcome, new, out)
            elif refused is not None:
                refused(command, outcome)
        return ordered

    async def edit_message(self, uow: UnitOfWork, command: EditMessage, out: list[Event]) -> Message:
        """Change the body of one's own message."""
        members, message = await self._find(uow, command.actor, command.chat_id, command.message_id)
        enforce(may_edit(_role(members, command.actor), is_author=message.sender_id == command.actor))
        edited = message.edit(command.body, self._clock.utcnow())
        await uow.messages.save(edited)
        out.append(MessageEdited(edited, members.user_ids))
        return edited

    async def delete_message(self, uow: UnitOfWork, command: DeleteMessage, out: list[Event]) -> Message:
        """Turn a message into a tombstone (it keeps its seq); deleting twice changes nothing."""
        members, message = await self._find(uow, command.actor, command.chat_id, command.message_id)
        is_author = message.sender_id == command.actor
        enforce(may_delete(_role(members, command.actor), members.kind, is_author=is_author))
        if message.deleted:
            # Announced again: the member who deletes twice (two devices) gets an answer; applying a deletion
            # twice changes nothing for a client.
            out.append(MessageDeleted(message, members.user_ids))
            return message
        tombstone = message.delete(command.actor, self._clock.utcnow())
        await uow.messages.save(tombstone)
        out.append(MessageDeleted(tombstone, members.user_ids))
        return tombstone

    async def react(self, uow: UnitOfWork, command: ReactToMessage, out: list[Event]) -> Message:
        """Put a reaction on a message or take one's own off; doing it twice changes nothing."""
        members, message = await self._find(uow, command.actor, command.chat_id, command.message_id)
        enforce(may_react(_role(members, command.actor)))
        reacted = message.react(command.actor, command.emoji, add=command.add)
        now = self._clock.utcnow()
        if reacted != message:
            await uow.messages.set_reaction(message.id, command.actor, command.emoji, add=command.add, at=now)
        # Announced even when nothing changed, like a second deletion: the member's other devices agree.
        out.append(MessageReacted(reacted, command.actor, command.emoji, command.add, now, members.user_ids))
        return reacted

    async def mark_read(self, uow: UnitOfWork, command: MarkRead, out: list[Event]) -> None:
        """Move the member's read cursor forward (never past the last message, never back)."""
        if command.seq < 0:
            raise InvalidCommand("`seq` is a message seq: 0 or more.")
        members = await self._access.verified(uow, command.chat_id)
        enforce(may_read(_role(members, command.actor)))
        assert members is not None
        chat = await uow.chats.get(command.chat_id)
        seq = min(command.seq, chat.last_seq if chat else 0)
        # Announced even when the cursor was already there: the sender's other devices learn where it is,
        # and clients keep the highest `seq` they have seen.
        await uow.members.advance_reads([ReadMove(command.chat_id, command.actor, seq)])
        out.append(ReadCursorMoved(command.chat_id, command.actor, seq, members.user_ids))

    async def relay_typing(self, command: RelayTyping, out: list[Event]) -> None:
        """Tell the other members someone is typing; nothing is stored."""
        members = await self._access.cached(command.chat_id)
        enforce(may_read(_role(members, command.actor)))
        assert members is not None
        others = tuple(user_id for user_id in members.user_ids if user_id != command.actor)
        out.append(UserTyped(command.chat_id, command.actor, others))

    async def sync(self, uow: UnitOfWork, command: Sync, out: list[Event]) -> None:
        """Answer one connection with everything it missed, chat by chat, in seq order."""
        summaries = await self._all_chats(uow, command.actor)
        budget = SYNC_TOTAL_LIMIT
        chats = []
        for summary in summaries:
            synced = await self._sync_chat(uow, summary, command.chats.get(summary.chat.id), budget)
            budget -= len(synced.messages)
            chats.append(synced)
        mine = {summary.chat.id for summary in summaries}
        removed = tuple(chat_id for chat_id in command.chats if chat_id not in mine)
        out.append(Synced(command.actor, command.session_id, tuple(chats), removed))

    async def _all_chats(self, uow: UnitOfWork, actor: str) -> list[ChatSummary]:
        # Every chat, page by page: a chat left out would look "removed" to the client.
        summaries: list[ChatSummary] = []
        cursor: ChatCursor | None = None
        while page := await uow.chats.summaries(actor, SYNC_CHATS_PAGE, cursor):
            summaries.extend(page)
            if len(page) < SYNC_CHATS_PAGE:
                break
            cursor = ChatCursor(page[-1].chat.last_activity_at, page[-1].chat.id)
        return summaries

    def reject(self, command: RejectCommand, out: list[Event]) -> None:
        """Answer a malformed command with its error, to the connection that sent it."""
        out.append(
            CommandRejected(
                command.actor, command.session_id, command.command, command.code, command.reason, command.client_id
            )
        )

    async def history(
        self, actor: str, chat_id: str, *, after: int | None, before: int | None, limit: int
    ) -> HistoryPage:
        """Messages of a chat in seq order: after `after` (forward), or up to `before` (backward)."""
        limit = max(1, min(limit, HISTORY_LIMIT_MAX))
        async with self._uow(write=False) as uow:
            members = await self._access.verified(uow, chat_id)
            enforce(may_read(_role(members, actor)))
            messages = await uow.messages.page(chat_id, after=after, before=before, limit=limit + 1)
        has_more = len(messages) > limit
        if has_more:
            messages = messages[:limit] if after is not None else messages[1:]
        return HistoryPage(messages, has_more)

    async def _admit(self, uow: UnitOfWork, command: SendMessage, replied: Mapping[str, Message]) -> None:
        check_client_id(command.client_id)
        check_body(command.body)
        members = await self._access.verified(uow, command.chat_id, lock=True)
        enforce(may_send(_role(members, command.actor)))
        if command.reply_to is not None:  # after membership: a non-member learns nothing of the messages
            target = replied.get(command.reply_to)
            if target is None or target.chat_id != command.chat_id:
                raise InvalidReplyTarget()

    async def _store(
        self, uow: UnitOfWork, admitted: list[tuple[int, SendMessage]], replied: Mapping[str, Message]
    ) -> tuple[dict[int, Message | ParlourError], set[int]]:
        known = await uow.messages.by_client_ids([(command.actor, command.client_id) for _, command in admitted])
        first_of: dict[tuple[str, str], int] = {}  # a client id repeated within the batch: its first command
        new: dict[str, list[tuple[int, SendMessage]]] = {}  # per chat, in command order
        for index, command in admitted:
            key = (command.actor, command.client_id)
            if key not in known and key not in first_of:
                first_of[key] = index
                new.setdefault(command.chat_id, []).append((index, command))
        created = await self._create(uow, new, replied)
        outcomes: dict[int, Message | ParlourError] = {}
        for index, command in admitted:
            key = (command.actor, command.client_id)
            message = known.get(key) or created[first_of[key]]
            # The same client id for another chat is a client bug: refuse rather than ack the wrong chat.
            outcomes[index] = message if message.chat_id == command.chat_id else ClientIdReused()
        return outcomes, set(created)

    async def _create(
        self, uow: UnitOfWork, new: dict[str, list[tuple[int, SendMessage]]], replied: Mapping[str, Message]
    ) -> dict[int, Message]:
        if not new:
            return {}
        now = self._clock.utcnow()
        last = await uow.chats.take_seqs({chat_id: len(commands) for chat_id, commands in new.items()}, now)
        created: dict[int, Message] = {}
        for chat_id, commands in new.items():
            first = last[chat_id] - len(commands) + 1
            for seq, (index, c) in enumerate(commands, start=first):
                quote = replied[c.reply_to].quote() if c.reply_to is not None else None
                created[index] = Message(self._ids(), chat_id, seq, c.actor, c.client_id, c.body, now, reply_to=quote)
        await uow.messages.add_many(list(created.values()))
        # Writing is reading: the sender's cursor follows their own messages, so they are never unread
        # (the repository keeps the furthest move of each member).
        await uow.members.advance_reads([ReadMove(m.chat_id, m.sender_id, m.seq) for m in created.values()])
        return created

    async def _mentions(self, uow: UnitOfWork, sends: dict[int, SendMessage]) -> dict[int, tuple[str, ...]]:
        """The ids of the users each new message mentions (`@username`), by index in the batch; one query."""
        named = {index: mentioned_usernames(send.body) for index, send in sends.items()}
        wanted = sorted({name for names in named.values() for name in names})
        if not wanted:
            return {}
        ids = await uow.users.ids_by_username(wanted)
        return {
            index: tuple(ids[name] for name in sorted(names) if name in ids) for index, names in named.items() if names
        }

    async def _announce(
        self,
        uow: UnitOfWork,
        command: SendMessage,
        message: Message,
        mentions: tuple[str, ...] | None,
        out: list[Event],
    ) -> None:
        members = await self._access.verified(uow, command.chat_id, lock=True)  # held: no query
        assert members is not None
        if mentions is not None:  # new: the members hear of it once; a repeated client id is only acked
            mentioned = tuple(user_id for user_id in mentions if members.role_of(user_id) is not None)
            out.append(MessageSent(message, members.user_ids, mentioned, members.kind.value, members.title))
        if command.session_id is not None:
            out.append(MessageAcknowledged(message, command.session_id))

    async def _find(self, uow: UnitOfWork, actor: str, chat_id: str, message_id: str) -> tuple[Members, Message]:
        members = await self._access.verified(uow, chat_id)
        enforce(may_read(_role(members, actor)))  # a non-member learns nothing about the messages
        assert members is not None
        message = await uow.messages.get(chat_id, message_id)
        if message is None:
            raise MessageNotFound()
        return members, message

    async def _sync_chat(self, uow: UnitOfWork, summary: ChatSummary, known: int | None, budget: int) -> SyncedChat:
        chat = summary.chat
        after = known or 0
        description = None
        if known is None:  # a chat the client has not heard of: describe it first
            description = ChatView(chat, tuple(await uow.members.of_chat(chat.id)))
        limit = min(SYNC_CHAT_LIMIT, max(budget, 0))
        messages: list[Message] = []
        if chat.last_seq > after and limit > 0:
            messages = await uow.messages.page(chat.id, after=after, before=None, limit=limit)
        last = messages[-1].seq if messages else after
        return SyncedChat(chat.id, tuple(messages), last, last < chat.last_seq, description)
