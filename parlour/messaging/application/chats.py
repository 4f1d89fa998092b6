"""The chat use cases: create direct chats and groups, manage members and roles, rename, list, look up.

Membership changes lock the chat row (by bumping its membership version) in their transaction, drop
this worker's cached members at once, and publish `MembershipChanged` so every other worker does too.
A check that may ask auth over HTTP (is this user id real?) runs before the write transaction, so no
write lock is held across a network call; the authorisation is then checked again under the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from parlour.common.clock import Clock
from parlour.messaging.application.access import MembershipCache
from parlour.messaging.application.ports import (
    ChatCursor,
    ChatSummary,
    EventPublisher,
    ProjectedUser,
    UnitOfWork,
    UnitOfWorkFactory,
    UserLookup,
)
from parlour.messaging.domain.errors import ChatNotFound, MemberNotFound, TooManyMembers, UnknownUser
from parlour.messaging.domain.messages import (
    AddMember,
    ChangeRole,
    ChatUpdated,
    CreateDirectChat,
    CreateGroup,
    Event,
    MemberRemoved,
    MembershipChanged,
    OnBehalf,
    RemoveMember,
    RenameChat,
)
from parlour.messaging.domain.model import (
    GROUP_MAX_MEMBERS,
    Chat,
    ChatKind,
    ChatView,
    Member,
    Members,
    Role,
    direct_key,
    ensure_owner_remains,
    group_member_ids,
    normalize_title,
)
from parlour.messaging.domain.policy import (
    Verdict,
    enforce,
    may_add,
    may_change_role,
    may_read,
    may_remove,
    may_rename,
)

CHAT_LIST_LIMIT_MAX = 100


class UserDirectory:
    """Which user ids are real: the projection of auth's events, else auth itself (then remembered)."""

    def __init__(self, unit_of_work: UnitOfWorkFactory, lookup: UserLookup) -> None:
        self._uow = unit_of_work
        self._lookup = lookup

    async def record(self, *users: ProjectedUser) -> None:
        """Remember users (from `user.registered`, many in one transaction); a repeat is ignored."""
        async with self._uow() as uow:
            await uow.users.add_many(users)
            await uow.commit()

    async def forget(self, *user_ids: str) -> None:
        """Forget deleted users (from `user.deleted`): adding one later asks auth, which says they are gone."""
        async with self._uow() as uow:
            await uow.users.remove_many(user_ids)
            await uow.commit()

    async def require_known(self, user_ids: Sequence[str], caller: OnBehalf | None) -> None:
        """Raise `UnknownUser` for the first id auth does not know."""
        async with self._uow(write=False) as uow:
            known = await uow.users.known(user_ids)
        for user_id in user_ids:
            if user_id in known:
                continue
            user = await self._lookup.find(user_id, caller)
            if user is None:
                raise UnknownUser(user_id=user_id)
            await self.record(user)


class ChatHandlers:
    """One method per chat command or query; ports come in through the constructor."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        access: MembershipCache,
        users: UserDirectory,
        events: EventPublisher,
        clock: Clock,
        ids: Callable[[], str],
    ) -> None:
        self._uow = unit_of_work
        self._access = access
        self._users = users
        self._events = events
        self._clock = clock
        self._ids = ids

    async def create_direct(self, command: CreateDirectChat) -> tuple[ChatView, bool]:
        """The one direct chat of two users, created on first ask; returns it and whether it is new."""
        key = direct_key(command.actor, command.peer_id)
        async with self._uow(write=False) as uow:
            existing = await uow.chats.by_direct_key(key)
            if existing is not None:
                return await self._view(uow, existing.id), False
        await self._users.require_known([command.peer_id], command.caller)
        now = self._clock.utcnow()
        chat = Chat(self._ids(), ChatKind.DIRECT, None, now, now, direct_key=key)
        async with self._uow() as uow:
            if not await uow.chats.add(chat):  # a concurrent request created it first: that one it is
                found = await uow.chats.by_direct_key(key)
                assert found is not None
                return await self._view(uow, found.id), False
            for user_id in (command.actor, command.peer_id):
                await uow.members.add(Member(chat.id, user_id, Role.MEMBER, now))
            view = await self._view(uow, chat.id)
            await self._events.commit(uow, [ChatUpdated(view, _ids_of(view)), _created(view)])
        return view, True

    async def create_group(self, command: CreateGroup) -> ChatView:
        """A new group owned by its creator, with the given members."""
        title = normalize_title(command.title)
        others = group_member_ids(command.actor, command.member_ids)
        await self._users.require_known(others, command.caller)
        now = self._clock.utcnow()
        chat = Chat(self._ids(), ChatKind.GROUP, title, now, now)
        async with self._uow() as uow:
            await uow.chats.add(chat)
            await uow.members.add(Member(chat.id, command.actor, Role.OWNER, now))
            for user_id in others:
                await uow.members.add(Member(chat.id, user_id, Role.MEMBER, now))
            view = await self._view(uow, chat.id)
            await self._events.commit(uow, [ChatUpdated(view, _ids_of(view)), _created(view)])
        return view

    async def add_member(self, command: AddMember) -> ChatView:
        """Add a user to a group (adding a member again changes nothing)."""
        async with self._uow(write=False) as uow:
            members = await self._access.verified(uow, command.chat_id)
        enforce(_decide(members, lambda m: may_add(m.role_of(command.actor), m.kind, command.role)))
        await self._users.require_known([command.user_id], command.caller)
        async with self._uow() as uow:
            members = await self._locked(uow, command.chat_id)
            enforce(may_add(members.role_of(command.actor), members.kind, command.role))
            if members.role_of(command.user_id) is not None:
                return await self._view(uow, command.chat_id)
            if len(members.roles) >= GROUP_MAX_MEMBERS:
                raise TooManyMembers()
            member = Member(command.chat_id, command.user_id, command.role, self._clock.utcnow())
            await uow.members.add(member)
            return await self._membership_changed(uow, command.chat_id, [])

    async def remove_member(self, command: RemoveMember) -> None:
        """Remove a member, or leave when removing oneself; the last owner cannot go."""
        async with self._uow() as uow:
            members = await self._locked(uow, command.chat_id)
            actor, target = members.role_of(command.actor), members.role_of(command.user_id)
            if target is None:  # not (or no longer) a member: nothing to do, once the actor may look
                enforce(may_read(actor))
                return
            enforce(may_remove(actor, members.kind, target, is_self=command.actor == command.user_id))
            ensure_owner_remains(members, command.user_id, None)
            await uow.members.remove(command.chat_id, command.user_id)
            removed = MemberRemoved(command.chat_id, command.user_id)
            await self._membership_changed(uow, command.chat_id, [removed], removed=(command.user_id,))

    async def change_role(self, command: ChangeRole) -> ChatView:
        """Promote or demote a member (an owner hands over by making another member an owner)."""
        async with self._uow() as uow:
            members = await self._locked(uow, command.chat_id)
            enforce(may_change_role(members.role_of(command.actor), members.kind))
            current = members.role_of(command.user_id)
            if current is None:
                raise MemberNotFound()
            if current is command.role:
                return await self._view(uow, command.chat_id)
            ensure_owner_remains(members, command.user_id, command.role)
            await uow.members.set_role(command.chat_id, command.user_id, command.role)
            return await self._membership_changed(uow, command.chat_id, [])

    async def rename(self, command: RenameChat) -> ChatView:
        """Change a group's title."""
        title = normalize_title(command.title)
        async with self._uow() as uow:
            members = await self._access.verified(uow, command.chat_id)
            enforce(_decide(members, lambda m: may_rename(m.role_of(command.actor), m.kind)))
            await uow.chats.rename(command.chat_id, title)
            view = await self._view(uow, command.chat_id)
            await self._events.commit(uow, [ChatUpdated(view, _ids_of(view))])
        return view

    async def get(self, actor: str, chat_id: str) -> ChatView:
        """A chat the actor is a member of, with its members."""
        async with self._uow(write=False) as uow:
            members = await self._access.verified(uow, chat_id)
            enforce(_decide(members, lambda m: may_read(m.role_of(actor))))
            return await self._view(uow, chat_id)

    async def list_chats(self, actor: str, limit: int, after: ChatCursor | None) -> list[ChatSummary]:
        """The actor's chats by last activity, newest first."""
        async with self._uow(write=False) as uow:
            return await uow.chats.summaries(actor, max(1, min(limit, CHAT_LIST_LIMIT_MAX)), after)

    async def _locked(self, uow: UnitOfWork, chat_id: str) -> Members:
        members = await self._access.verified(uow, chat_id, lock=True)
        if members is None:
            raise ChatNotFound()
        return members

    async def _membership_changed(
        self, uow: UnitOfWork, chat_id: str, extra: list[Event], *, removed: tuple[str, ...] = ()
    ) -> ChatView:
        version = await uow.chats.bump_member_version(chat_id)
        view = await self._view(uow, chat_id)
        # Members who just left hear of it once, by `MemberRemoved`; the others get the new description.
        changed = MembershipChanged(chat_id, version, _ids_of(view), removed)
        await self._events.commit(uow, [ChatUpdated(view, _ids_of(view)), *extra, changed])
        self._access.invalidate(chat_id)
        return view

    async def _view(self, uow: UnitOfWork, chat_id: str) -> ChatView:
        chat = await uow.chats.get(chat_id)
        assert chat is not None
        return ChatView(chat, tuple(await uow.members.of_chat(chat_id)))


def _created(view: ChatView) -> MembershipChanged:
    return MembershipChanged(view.chat.id, view.chat.member_version, _ids_of(view))


def _ids_of(view: ChatView) -> tuple[str, ...]:
    return tuple(member.user_id for member in view.members)


def _decide(members: Members | None, decide: Callable[[Members], Verdict]) -> Verdict:
    return Verdict.NOT_VISIBLE if members is None else decide(members)
