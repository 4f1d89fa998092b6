"""Message use cases through in-memory adapters: seq, idempotency, edits, deletes, reactions, cursors, typing,
sync."""

from __future__ import annotations

import pytest

from parlour.messaging.application import messages as messages_module
from parlour.messaging.domain.errors import (
    ChatNotFound,
    ChatRoleRequired,
    ClientIdReused,
    InvalidMessageBody,
    InvalidReplyTarget,
    MessageNotFound,
    NotMessageAuthor,
    UnknownReaction,
)
from parlour.messaging.domain.messages import (
    CommandRejected,
    DeleteMessage,
    EditMessage,
    MarkRead,
    MessageAcknowledged,
    MessageDeleted,
    MessageEdited,
    MessageReacted,
    ReactToMessage,
    ReadCursorMoved,
    RelayTyping,
    SendMessage,
    Sync,
    Synced,
    UserTyped,
)
from parlour.messaging.domain.model import REACTIONS, Message, Quote, Reaction
from tests.unit.messaging.conftest import World


async def send(world: World, chat_id: str, actor: str, client_id: str, body: str = "hi") -> Message:
    message: Message = await world.processor.execute(SendMessage(actor, chat_id, client_id, body))
    return message


async def test_seq_starts_at_one_and_counts_up_per_chat(world: World) -> None:
    first, second = await world.group(), await world.group()
    seqs = [(await send(world, first.chat.id, "ann", f"a{i}")).seq for i in range(3)]
    assert seqs == [1, 2, 3]
    assert (await send(world, second.chat.id, "bob", "b1")).seq == 1


async def test_a_repeated_client_id_returns_the_original_and_only_acks_again(world: World) -> None:
    chat = (await world.group()).chat
    original = await send(world, chat.id, "ann", "k1", "first")
    again = await world.processor.execute(SendMessage("ann", chat.id, "k1", "first", session_id="s1"))
    assert again == original
    assert len(world.store.state.messages) == 1
    assert world.events.published[-1] == [MessageAcknowledged(original, "s1")]  # the members heard of it once


async def test_a_client_id_used_in_another_chat_is_refused(world: World) -> None:
    first, second = await world.group(), await world.group()
    await send(world, first.chat.id, "ann", "k1")
    with pytest.raises(ClientIdReused):
        await send(world, second.chat.id, "ann", "k1")


async def test_sending_moves_the_senders_read_cursor(world: World) -> None:
    chat = (await world.group()).chat
    await send(world, chat.id, "bob", "k1")
    await send(world, chat.id, "ann", "k2")
    state = world.store.state
    assert state.members[chat.id, "ann"].read_seq == 2
    assert state.members[chat.id, "bob"].read_seq == 1
    assert state.members[chat.id, "cat"].read_seq == 0


async def test_non_members_cannot_send_and_learn_nothing(world: World) -> None:
    chat = (await world.group()).chat
    with pytest.raises(ChatNotFound):
        await send(world, chat.id, "eve", "k1")
    with pytest.raises(ChatNotFound):
        await send(world, "no-such-chat", "ann", "k1")
    with pytest.raises(InvalidMessageBody):
        await send(world, chat.id, "ann", "k1", "   ")
    assert world.store.state.messages == {}


async def test_only_the_author_edits_and_members_hear_of_it(world: World) -> None:
    chat = (await world.group()).chat
    message = await send(world, chat.id, "bob", "k1", "tpyo")
    with pytest.raises(NotMessageAuthor):
        await world.processor.execute(EditMessage("ann", chat.id, message.id, "hacked"))
    with pytest.raises(ChatNotFound):
        await world.processor.execute(EditMessage("eve", chat.id, message.id, "hacked"))
    with pytest.raises(MessageNotFound):
        await world.processor.execute(EditMessage("bob", chat.id, "nope", "x"))
    edited = await world.processor.execute(EditMessage("bob", chat.id, message.id, "typo"))
    assert (edited.body, edited.seq, edited.edited_at) == ("typo", 1, world.clock.utcnow())
    assert world.events.events[-1] == MessageEdited(edited, ("ann", "bob", "cat"))


async def test_authors_and_group_admins_delete_leaving_a_tombstone(world: World) -> None:
    chat = (await world.group()).chat
    by_bob = await send(world, chat.id, "bob", "k1")
    by_cat = await send(world, chat.id, "cat", "k2")
    with pytest.raises(ChatRoleRequired):
        await world.processor.execute(DeleteMessage("bob", chat.id, by_cat.id))
    tombstone = await world.processor.execute(DeleteMessage("ann", chat.id, by_bob.id))  # ann owns the group
    assert (tombstone.seq, tombstone.body, tombstone.deleted_by) == (1, "", "ann")
    assert world.events.events[-1] == MessageDeleted(tombstone, ("ann", "bob", "cat"))
    assert await world.processor.execute(DeleteMessage("bob", chat.id, by_bob.id)) == tombstone
    # Deleting again changes nothing but is announced again: a re-run after a lost publication.
    assert world.events.events[-1] == MessageDeleted(tombstone, ("ann", "bob", "cat"))
    page = await world.messages.history("cat", chat.id, after=0, before=None, limit=10)
    assert [(m.seq, m.deleted) for m in page.messages] == [(1, True), (2, False)]


async def test_a_reply_quotes_a_message_of_its_own_chat_as_it_is_now_and_nothing_else(world: World) -> None:
    chat, other = (await world.group()).chat, (await world.group()).chat
    question = await send(world, chat.id, "bob", "k1", "tea?")
    elsewhere = await send(world, other.id, "bob", "k2", "not here")
    for target in (elsewhere.id, "no-such-message"):
        with pytest.raises(InvalidReplyTarget):
            await world.processor.execute(SendMessage("ann", chat.id, "k3", "yes", reply_to=target))
    with pytest.raises(ChatNotFound):  # an outsider learns nothing, whatever the reply names
        await world.processor.execute(SendMessage("eve", chat.id, "k4", "yes", reply_to=question.id))
    reply = await world.processor.execute(SendMessage("ann", chat.id, "k5", "yes!", reply_to=question.id))
    assert reply.reply_to == question.quote()
    await world.processor.execute(DeleteMessage("bob", chat.id, question.id))
    page = await world.messages.history("cat", chat.id, after=1, before=None, limit=10)
    assert [(m.body, m.reply_to) for m in page.messages] == [("yes!", Quote(question.id, 1, "bob", "", True))]


async def test_members_react_each_emoji_once_every_member_hears_of_it_and_history_keeps_it(world: World) -> None:
    chat = (await world.group()).chat
    message = await send(world, chat.id, "bob", "k1")
    thumbs = REACTIONS[0]
    with pytest.raises(ChatNotFound):
        await world.processor.execute(ReactToMessage("eve", chat.id, message.id, thumbs))
    with pytest.raises(UnknownReaction):
        await world.processor.execute(ReactToMessage("ann", chat.id, message.id, "🐍"))
    with pytest.raises(MessageNotFound):
        await world.processor.execute(ReactToMessage("ann", chat.id, "nope", thumbs))
    await world.processor.execute(ReactToMessage("ann", chat.id, message.id, thumbs))
    reacted = await world.processor.execute(ReactToMessage("ann", chat.id, message.id, thumbs))  # twice: once
    assert reacted.reactions == (Reaction(thumbs, ("ann",)),)
    members = ("ann", "bob", "cat")
    assert world.events.events[-1] == MessageReacted(reacted, "ann", thumbs, True, world.clock.utcnow(), members)
    removed = await world.processor.execute(ReactToMessage("ann", chat.id, message.id, thumbs, add=False))
    assert removed.reactions == ()
    await world.processor.execute(ReactToMessage("cat", chat.id, message.id, REACTIONS[1]))
    page = await world.messages.history("bob", chat.id, after=0, before=None, limit=10)
    assert [m.reactions for m in page.messages] == [(Reaction(REACTIONS[1], ("cat",)),)]


async def test_read_cursors_only_move_forward_and_never_past_the_last_message(world: World) -> None:
    chat = (await world.group()).chat
    for i in range(3):
        await send(world, chat.id, "ann", f"k{i}")
    await world.processor.execute(MarkRead("bob", chat.id, 2))
    assert world.events.events[-1] == ReadCursorMoved(chat.id, "bob", 2, ("ann", "bob", "cat"))
    await world.processor.execute(MarkRead("bob", chat.id, 1))
    assert world.store.state.members[chat.id, "bob"].read_seq == 2  # backwards: nothing moves
    await world.processor.execute(MarkRead("bob", chat.id, 2))
    # A repeat is announced again (a re-run after a lost publication); clients keep the highest seq.
    assert world.events.events[-1] == ReadCursorMoved(chat.id, "bob", 2, ("ann", "bob", "cat"))
    await world.processor.execute(MarkRead("bob", chat.id, 99))
    assert world.store.state.members[chat.id, "bob"].read_seq == 3
    with pytest.raises(ChatNotFound):
        await world.processor.execute(MarkRead("eve", chat.id, 1))


async def test_typing_goes_to_the_other_members_and_is_never_stored(world: World) -> None:
    chat = (await world.group()).chat
    commits = world.store.commits
    await world.processor.execute_batch([RelayTyping("bob", chat.id, "s1")])
    assert world.events.events[-1] == UserTyped(chat.id, "bob", ("ann", "cat"))
    assert world.store.commits == commits
    await world.processor.execute_batch([RelayTyping("eve", chat.id, "s9")])
    (rejected,) = world.events.published[-1]
    assert isinstance(rejected, CommandRejected)
    assert (rejected.code, rejected.command, rejected.session_id) == ("chat_not_found", "typing", "s9")


async def test_a_batch_commits_once_and_a_refused_command_does_not_disturb_its_neighbours(world: World) -> None:
    chat = (await world.group()).chat
    commits = world.store.commits
    await world.processor.execute_batch(
        [
            SendMessage("ann", chat.id, "k1", "one", "s1"),
            SendMessage("eve", chat.id, "k2", "intruder", "s2"),
            SendMessage("bob", chat.id, "k3", "  ", "s3"),
            SendMessage("bob", chat.id, "k4", "two", "s3"),
            SendMessage("ann", chat.id, "k1", "one", "s1"),  # a duplicate within the batch
        ]
    )
    assert world.store.commits == commits + 1
    assert len(world.events.published[-1]) == 7  # one publication: 2 new messages, 3 acks, 2 rejections
    assert [(m.seq, m.body) for m in sorted(world.store.state.messages.values(), key=lambda m: m.seq)] == [
        (1, "one"),
        (2, "two"),
    ]
    rejections = [e for e in world.events.events if isinstance(e, CommandRejected)]
    assert [(r.session_id, r.code, r.client_id) for r in rejections] == [
        ("s2", "chat_not_found", "k2"),
        ("s3", "message_body_invalid", "k3"),
    ]
    acks = [e for e in world.events.events if isinstance(e, MessageAcknowledged)]
    assert [(a.message.seq, a.session_id) for a in acks] == [(1, "s1"), (2, "s3"), (1, "s1")]


async def test_sync_sends_what_was_missed_in_order_and_describes_new_chats(world: World) -> None:
    known, new = (await world.group()).chat, (await world.group("cat", "bob")).chat
    for i in range(4):
        await send(world, known.id, "ann", f"a{i}")
    await send(world, new.id, "cat", "c1")
    await world.processor.execute_batch([Sync("bob", "s1", {known.id: 2, "gone": 5})])
    synced = world.events.events[-1]
    assert isinstance(synced, Synced)
    by_chat = {chat.chat_id: chat for chat in synced.chats}
    assert [m.seq for m in by_chat[known.id].messages] == [3, 4]
    assert by_chat[known.id].description is None
    assert by_chat[new.id].description is not None
    assert [m.seq for m in by_chat[new.id].messages] == [1]
    assert (by_chat[known.id].last_seq, by_chat[new.id].last_seq) == (4, 1)
    assert synced.removed == ("gone",)
    assert not any(chat.truncated for chat in synced.chats)


async def test_sync_stops_at_500_per_chat_and_says_so(world: World) -> None:
    chat = (await world.group()).chat
    await world.processor.execute_batch([SendMessage("ann", chat.id, f"k{i}", "m") for i in range(503)])
    await world.processor.execute_batch([Sync("bob", "s1", {chat.id: 1})])
    synced = world.events.events[-1]
    assert isinstance(synced, Synced)
    (only,) = synced.chats
    assert (only.messages[0].seq, only.last_seq, only.truncated) == (2, 501, True)


async def test_a_batch_over_several_chats_numbers_each_chat_on_its_own(world: World) -> None:
    first, second = (await world.group()).chat, (await world.group()).chat
    await world.processor.execute_batch(
        [
            SendMessage("ann", first.id, "a1", "x", "s"),
            SendMessage("bob", second.id, "b1", "x", "s"),
            SendMessage("ann", first.id, "a2", "x", "s"),
            EditMessage("ann", first.id, "nope", "x", "s"),  # splits the sends into two runs
            SendMessage("cat", second.id, "c1", "x", "s"),
            SendMessage("ann", second.id, "a1", "elsewhere", "s"),  # a1 named `first` already
        ]
    )
    stored = sorted((m.chat_id == first.id, m.seq, m.client_id) for m in world.store.state.messages.values())
    assert stored == [(False, 1, "b1"), (False, 2, "c1"), (True, 1, "a1"), (True, 2, "a2")]
    answers = [(type(e).__name__, getattr(e, "code", None)) for e in world.events.published[-1]]
    assert answers[-2:] == [("MessageAcknowledged", None), ("CommandRejected", "client_id_reused")]
    assert ("CommandRejected", "message_not_found") in answers


async def test_sync_covers_every_chat_however_many_pages_they_take(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messages_module, "SYNC_CHATS_PAGE", 2)
    chats = [(await world.group()).chat for _ in range(5)]
    for chat in chats:
        await send(world, chat.id, "ann", f"k-{chat.id}")
    await world.processor.execute_batch([Sync("bob", "s1", {chat.id: 0 for chat in chats})])
    synced = world.events.events[-1]
    assert isinstance(synced, Synced)
    assert {chat.chat_id for chat in synced.chats} == {chat.id for chat in chats}
    assert synced.removed == ()
