"""Chat use cases through in-memory adapters: direct pairs, groups, members and roles, the PIP cache."""

from __future__ import annotations

import pytest

from parlour.messaging.application.ports import ChatCursor
from parlour.messaging.domain.errors import (
    ChatNotFound,
    ChatRoleRequired,
    DirectChatFixed,
    LastOwnerCannotLeave,
    MemberNotFound,
    UnknownUser,
)
from parlour.messaging.domain.messages import (
    AddMember,
    ChangeRole,
    ChatUpdated,
    CommandRejected,
    CreateDirectChat,
    MemberRemoved,
    MembershipChanged,
    RelayTyping,
    RemoveMember,
    RenameChat,
    SendMessage,
)
from parlour.messaging.domain.model import Role
from tests.unit.messaging.conftest import World


def roles(world: World, chat_id: str) -> dict[str, Role]:
    return {user: member.role for (chat, user), member in world.store.state.members.items() if chat == chat_id}


async def test_a_direct_chat_is_created_once_whoever_asks(world: World) -> None:
    view, created = await world.chats.create_direct(CreateDirectChat("ann", "bob"))
    again, created_again = await world.chats.create_direct(CreateDirectChat("bob", "ann"))
    assert (created, created_again) == (True, False)
    assert again.chat.id == view.chat.id
    assert roles(world, view.chat.id) == {"ann": Role.MEMBER, "bob": Role.MEMBER}
    assert world.events.events == [
        ChatUpdated(view, ("ann", "bob")),
        MembershipChanged(view.chat.id, 0, ("ann", "bob")),
    ]


async def test_members_must_be_known_users(world: World) -> None:
    with pytest.raises(UnknownUser):
        await world.chats.create_direct(CreateDirectChat("ann", "ghost"))
    with pytest.raises(UnknownUser):
        await world.group("ann", "bob", "ghost")
    assert world.store.state.chats == {}


async def test_a_user_auth_knows_is_looked_up_once_then_projected(world: World) -> None:
    await world.group("ann", "bob")
    await world.group("ann", "bob")
    assert world.lookup.asked == ["bob"]


async def test_a_group_starts_with_its_owner_and_members(world: World) -> None:
    view = await world.group("ann", "bob", "cat", "bob")
    assert view.chat.title == "Team"
    assert roles(world, view.chat.id) == {"ann": Role.OWNER, "bob": Role.MEMBER, "cat": Role.MEMBER}


async def test_admins_add_members_and_members_do_not(world: World) -> None:
    chat = (await world.group()).chat
    with pytest.raises(ChatRoleRequired):
        await world.chats.add_member(AddMember("bob", chat.id, "dan"))
    with pytest.raises(ChatNotFound):
        await world.chats.add_member(AddMember("eve", chat.id, "eve"))
    await world.chats.change_role(ChangeRole("ann", chat.id, "bob", Role.ADMIN))
    await world.chats.add_member(AddMember("bob", chat.id, "dan"))
    with pytest.raises(ChatRoleRequired):
        await world.chats.add_member(AddMember("bob", chat.id, "eve", Role.ADMIN))
    assert roles(world, chat.id)["dan"] is Role.MEMBER


async def test_a_removed_member_is_cut_off_at_once_even_with_a_warm_cache(world: World) -> None:
    chat = (await world.group()).chat
    await world.processor.execute(SendMessage("bob", chat.id, "k1", "hello"))  # warms the PIP cache
    await world.chats.remove_member(RemoveMember("ann", chat.id, "bob"))
    with pytest.raises(ChatNotFound):
        await world.processor.execute(SendMessage("bob", chat.id, "k2", "still here?"))
    with pytest.raises(ChatNotFound):
        await world.messages.history("bob", chat.id, after=None, before=None, limit=10)
    with pytest.raises(ChatNotFound):
        await world.chats.get("bob", chat.id)
    assert [chat.chat.id for chat in await world.chats.list_chats("bob", 10, None)] == []


async def test_removal_tells_the_removed_user_the_others_and_every_worker(world: World) -> None:
    chat = (await world.group()).chat
    await world.chats.remove_member(RemoveMember("ann", chat.id, "cat"))
    updated, removed, changed = world.events.published[-1]
    assert isinstance(updated, ChatUpdated)
    assert updated.recipients == ("ann", "bob")
    assert removed == MemberRemoved(chat.id, "cat")
    assert changed == MembershipChanged(chat.id, 1, ("ann", "bob"), removed_ids=("cat",))


async def test_a_stale_cache_entry_is_never_trusted_by_a_writer(world: World) -> None:
    chat = (await world.group()).chat
    await world.processor.execute(SendMessage("bob", chat.id, "k1", "warm"))
    # Another worker removes bob: this worker's cache is not told (no invalidation event yet).
    async with world.store() as uow:
        await uow.members.remove(chat.id, "bob")
        await uow.chats.bump_member_version(chat.id)
        await uow.commit()
    with pytest.raises(ChatNotFound):
        await world.processor.execute(SendMessage("bob", chat.id, "k2", "sneaky"))


async def test_typing_trusts_the_cache_until_it_is_invalidated_or_expires(world: World) -> None:
    chat = (await world.group()).chat
    await world.processor.execute_batch([RelayTyping("bob", chat.id, "s")])
    async with world.store() as uow:  # removed on another worker
        await uow.members.remove(chat.id, "bob")
        await uow.chats.bump_member_version(chat.id)
        await uow.commit()
    world.access.invalidate(chat.id, 1)  # the MembershipChanged event arrives
    await world.processor.execute_batch([RelayTyping("bob", chat.id, "s")])
    assert isinstance(world.events.events[-1], CommandRejected)


async def test_the_cache_entry_expires_after_its_ttl(world: World) -> None:
    chat = (await world.group()).chat
    assert await world.access.cached(chat.id) is not None
    async with world.store() as uow:
        await uow.members.remove(chat.id, "bob")
        await uow.chats.bump_member_version(chat.id)
        await uow.commit()
    cached = await world.access.cached(chat.id)
    assert cached is not None
    assert cached.role_of("bob") is Role.MEMBER  # within the TTL, typing may still see bob
    world.clock.advance(31)
    cached = await world.access.cached(chat.id)
    assert cached is not None
    assert cached.role_of("bob") is None


async def test_the_last_owner_cannot_leave_until_ownership_is_handed_over(world: World) -> None:
    chat = (await world.group()).chat
    with pytest.raises(LastOwnerCannotLeave):
        await world.chats.remove_member(RemoveMember("ann", chat.id, "ann"))
    with pytest.raises(LastOwnerCannotLeave):
        await world.chats.change_role(ChangeRole("ann", chat.id, "ann", Role.MEMBER))
    await world.chats.change_role(ChangeRole("ann", chat.id, "bob", Role.OWNER))
    await world.chats.remove_member(RemoveMember("ann", chat.id, "ann"))
    assert roles(world, chat.id) == {"bob": Role.OWNER, "cat": Role.MEMBER}


async def test_members_leave_but_do_not_remove_others(world: World) -> None:
    chat = (await world.group()).chat
    with pytest.raises(ChatRoleRequired):
        await world.chats.remove_member(RemoveMember("bob", chat.id, "cat"))
    await world.chats.remove_member(RemoveMember("bob", chat.id, "bob"))
    await world.chats.remove_member(RemoveMember("ann", chat.id, "bob"))  # already gone: nothing to do
    with pytest.raises(MemberNotFound):
        await world.chats.change_role(ChangeRole("ann", chat.id, "bob", Role.ADMIN))
    assert "bob" not in roles(world, chat.id)


async def test_direct_chats_keep_their_members_and_have_no_title(world: World) -> None:
    view, _ = await world.chats.create_direct(CreateDirectChat("ann", "bob"))
    for attempt in (
        world.chats.add_member(AddMember("ann", view.chat.id, "cat")),
        world.chats.remove_member(RemoveMember("ann", view.chat.id, "ann")),
        world.chats.rename(RenameChat("ann", view.chat.id, "Us")),
    ):
        with pytest.raises(DirectChatFixed):
            await attempt


async def test_admins_rename_groups(world: World) -> None:
    chat = (await world.group()).chat
    with pytest.raises(ChatRoleRequired):
        await world.chats.rename(RenameChat("bob", chat.id, "Mine"))
    view = await world.chats.rename(RenameChat("ann", chat.id, "  Ours  "))
    assert view.chat.title == "Ours"


async def test_the_chat_list_puts_the_latest_activity_first_and_pages(world: World) -> None:
    first, second, third = [(await world.group()).chat for _ in range(3)]
    world.clock.advance(1)
    await world.processor.execute(SendMessage("cat", first.id, "k1", "news"))
    page = await world.chats.list_chats("bob", 2, None)
    assert [s.chat.id for s in page] == [first.id, third.id]
    assert (page[0].unread, page[0].last_message and page[0].last_message.body) == (1, "news")
    rest = await world.chats.list_chats("bob", 2, ChatCursor(page[1].chat.last_activity_at, page[1].chat.id))
    assert [s.chat.id for s in rest] == [second.id]
