"""The notifications use cases: what the bus consumers and the HTTP routes call (the rule: domain/rule.py).

A batch of `message.sent` is one read of the recipients' mutes and one transaction that folds
the new messages into their pending states, written before the bus message is acked; the scheduler
(scheduler.py) is woken to look at the earliest due time again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from parlour.common.clock import Clock
from parlour.notifications.application.stores import Directory, Key, Memberships, PendingStore, Preferences, Statuses
from parlour.notifications.domain.errors import TooManyMutes
from parlour.notifications.domain.model import MAX_MUTES
from parlour.notifications.domain.rule import NewMessage, Pending, Run, Timing, gather, recipients


class NotificationHandlers:
    """The use cases, on their ports; `wake` tells the scheduler that something new waits."""

    def __init__(
        self,
        pending: PendingStore,
        memberships: Memberships,
        preferences: Preferences,
        directory: Directory,
        statuses: Statuses,
        clock: Clock,
        timing: Timing,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._pending = pending
        self._memberships = memberships
        self._preferences = preferences
        self._directory = directory
        self._statuses = statuses
        self._clock = clock
        self._timing = timing
        self._wake = wake

    async def messages_sent(self, messages: Sequence[NewMessage]) -> int:
        """Note each new message for the members to be told (rule, step 1-2); returns how many (message,
        member) pairs were noted. A chat's messages with the same members fold into each member's state
        at once (`Run`, `gather`): one pass per member, not one per message and member."""
        # Presence is not asked here: a member who closed their last tab a moment ago may still read as
        # online; whether they are looking is decided when the notification is due (rule, step 3).
        chat_runs = [Run.of(chat_messages) for chat_messages in _runs(messages)]
        muted = await self._preferences.muted({(r.chat_id, u) for r in chat_runs for u in r.member_ids})
        runs: dict[Key, list[Run]] = {}
        noted = 0
        for run in chat_runs:
            chat_muted = {user_id for chat, user_id in muted if chat == run.chat_id}
            told = recipients(run.member_ids, run.senders, chat_muted)
            for user_id in told:
                runs.setdefault((run.chat_id, user_id), []).append(run)
            noted += len(told) * len(run.messages) - sum(1 for m in run.messages if m.sender_id in told)
        if not runs:
            return 0
        now = self._clock.now()

        def fold(current: dict[Key, Pending]) -> list[Pending]:
            for key, member_runs in runs.items():
                for run in member_runs:
                    current[key] = gather(current[key], run, now, self._timing)
            return list(current.values())

        await self._pending.change(set(runs), fold)
        self._wake()
        return noted

    async def reads_moved(self, moves: Sequence[tuple[str, str, int]]) -> None:
        """Members read up to these seqs (a due notification counts only what lies beyond)."""
        await self._memberships.advance(moves)

    async def members_changed(self, chat_id: str, version: int, member_ids: Sequence[str]) -> None:
        """Keep who is in the chat (a member who left is not told)."""
        await self._memberships.apply(chat_id, version, member_ids)

    async def statuses_changed(self, statuses: Mapping[str, str]) -> None:
        """Presence says these users' status is now this."""
        await self._statuses.record(statuses)

    async def users_named(self, names: Mapping[str, str]) -> None:
        """Users' display names, new or changed."""
        await self._directory.record(names)

    async def preview(self, user_id: str) -> bool:
        """Whether the user's notifications show the message."""
        return (await self._preferences.previews([user_id]))[user_id]

    async def set_preview(self, user_id: str, preview: bool) -> bool:
        """Show or hide the message in the user's notifications from now on."""
        await self._preferences.set_preview(user_id, preview)
        return preview

    async def mutes(self, user_id: str) -> list[str]:
        """The chats the user muted."""
        return await self._preferences.mutes(user_id)

    async def mute(self, user_id: str, chat_id: str) -> None:
        """Mute a chat for the user (again: no change; more than `MAX_MUTES`: `TooManyMutes`).

        Membership is not asked: this service hears of a new chat from messaging's event a moment after
        it is created, and a mute made in between must not fail. A mute of a chat the user is not in
        changes nothing (only members are told) and answers like any other, so it tells nobody which
        chats exist."""
        muted = await self._preferences.mutes(user_id)
        if chat_id not in muted and len(muted) >= MAX_MUTES:
            raise TooManyMutes()
        await self._preferences.mute(user_id, chat_id)

    async def unmute(self, user_id: str, chat_id: str) -> None:
        """Unmute a chat (one that is not muted, or that the user left, changes nothing)."""
        await self._preferences.unmute(user_id, chat_id)


def _runs(messages: Sequence[NewMessage]) -> list[list[NewMessage]]:
    """The messages by chat in `seq` order, cut where the members change: each list is one `Run`
    (which drops a repeated `seq`)."""
    by_chat: dict[str, list[NewMessage]] = {}
    for message in messages:
        by_chat.setdefault(message.chat_id, []).append(message)
    runs: list[list[NewMessage]] = []
    for chat_messages in by_chat.values():
        chat_messages.sort(key=lambda m: m.seq)
        current: list[NewMessage] = []
        for message in chat_messages:
            if current and message.member_ids != current[-1].member_ids:
                runs.append(current)
                current = []
            current.append(message)
        runs.append(current)
    return runs
