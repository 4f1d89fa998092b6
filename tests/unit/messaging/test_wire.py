"""The bus adapter: what a client command decodes to, and the exact frames events become."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from parlour.common.bus import BusMessage
from parlour.common.bus.memory import InMemoryMessageBus
from parlour.common.bus.port import MalformedMessage
from parlour.common.clock import ManualClock
from parlour.common.contracts import COMMANDS, ClientCommand, CommandBatch, DeliveryItem
from parlour.common.contracts import events as service
from parlour.common.contracts.commands import FORWARDED, command_type
from parlour.messaging.adapters.bus import (
    BUILDERS,
    COMMAND_NAMES,
    BusEventChannel,
    EventMetrics,
    decode_commands,
    service_events,
)
from parlour.messaging.adapters.frames import delivery_items
from parlour.messaging.application.ports import Publication
from parlour.messaging.domain.messages import (
    CommandRejected,
    MarkRead,
    MemberRemoved,
    MembershipChanged,
    MessageAcknowledged,
    MessageDeleted,
    MessageReacted,
    MessageSent,
    ReactToMessage,
    RejectCommand,
    RelayTyping,
    SendMessage,
    Sync,
    Synced,
    SyncedChat,
    UserTyped,
)
from parlour.messaging.domain.model import Message

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
MESSAGE = Message("m1", "c1", 7, "ann", "k1", "hello", AT)


def command(payload: object, user: str = "ann", session: str = "s1") -> BusMessage:
    return commands([(payload, user, session)])


def commands(entries: list[tuple[object, str, str]]) -> BusMessage:
    stamped = [
        ClientCommand(user_id=user, session_id=session, command=msgspec.Raw(json.dumps(payload).encode()))
        for payload, user, session in entries
    ]
    return BusMessage(type=COMMANDS, body=msgspec.json.encode(CommandBatch(commands=stamped)))


def frames(*items: DeliveryItem) -> list[tuple[list[str], str | None, dict[str, object]]]:
    return [(item.user_ids, item.session_id, json.loads(bytes(item.frame))) for item in items]


def test_commands_decode_with_the_stamped_user_and_session_in_order() -> None:
    batch = commands(
        [
            ({"type": "message.send", "chat_id": "c1", "client_id": "k1", "body": "hi"}, "ann", "s1"),
            ({"type": "read", "chat_id": "c1", "seq": 3}, "bob", "s2"),
            ({"type": "resume", "chats": {"c1": 4}}, "ann", "s3"),
        ]
    )
    assert decode_commands(batch) == [
        SendMessage("ann", "c1", "k1", "hi", "s1"),
        MarkRead("bob", "c1", 3, "s2"),
        Sync("ann", "s3", {"c1": 4}),
    ]


def test_every_forwarded_contract_command_has_a_builder_and_a_name() -> None:
    assert set(BUILDERS) == set(FORWARDED)
    assert set(COMMAND_NAMES.values()) == {command_type(frame) for frame in FORWARDED}


@pytest.mark.parametrize(
    ("payload", "name", "client_id"),
    [
        ({"type": "message.send", "chat_id": "c1", "client_id": "k1"}, "message.send", "k1"),
        ({"type": "message.send", "chat_id": 5, "body": "x"}, "message.send", None),
        ({"type": "read", "chat_id": "c1", "seq": -1}, "read", None),
        ({"type": "launch.rockets"}, "launch.rockets", None),
        ({"type": "ping"}, "ping", None),
        ({"type": ["x"] * 3}, "unknown", None),
    ],
)
def test_a_bad_command_becomes_a_rejection_for_its_session(payload: object, name: str, client_id: str | None) -> None:
    (rejected,) = decode_commands(command(payload))
    assert isinstance(rejected, RejectCommand)
    assert (rejected.session_id, rejected.command, rejected.code, rejected.client_id) == (
        "s1",
        name,
        "command_invalid",
        client_id,
    )


def test_a_bad_command_does_not_take_its_batch_neighbours_with_it() -> None:
    good = {"type": "typing", "chat_id": "c1"}
    decoded = decode_commands(commands([(good, "ann", "s1"), ({"type": "read"}, "bob", "s2"), (good, "cat", "s3")]))
    assert [type(item) for item in decoded] == [RelayTyping, RejectCommand, RelayTyping]


@pytest.mark.parametrize(
    "message",
    [
        BusMessage(type=COMMANDS, body=b"\xff not json"),
        BusMessage(type=COMMANDS, body=b'{"type": "message.send"}'),
        BusMessage(type=COMMANDS, body=b'{"commands": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        BusMessage(type="something.else", body=b"{}"),
    ],
)
def test_a_body_naming_no_session_is_malformed_so_the_bus_parks_it(message: BusMessage) -> None:
    with pytest.raises(MalformedMessage):
        decode_commands(message)


def test_message_new_and_ack_frames() -> None:
    items = [
        *delivery_items(MessageSent(MESSAGE, ("ann", "bob"))),
        *delivery_items(MessageAcknowledged(MESSAGE, "s1")),
    ]
    assert frames(*items) == [
        (
            ["ann", "bob"],
            None,
            {
                "type": "message.new",
                "chat_id": "c1",
                "seq": 7,
                "message_id": "m1",
                "sender_id": "ann",
                "body": "hello",
                "created_at": "2026-01-02T03:04:05.678000Z",
                "edited_at": None,
                "deleted": False,
                "reactions": [],
                "reply_to": None,
            },
        ),
        (
            ["ann"],
            "s1",
            {
                "type": "message.ack",
                "client_id": "k1",
                "chat_id": "c1",
                "seq": 7,
                "message_id": "m1",
                "created_at": "2026-01-02T03:04:05.678000Z",
            },
        ),
    ]


def test_a_reaction_is_a_frame_for_every_member_with_the_whole_state_and_a_service_event() -> None:
    reacted = MESSAGE.react("bob", "👍", add=True).react("cat", "👍", add=True)
    event = MessageReacted(reacted, "cat", "👍", True, AT, ("ann", "bob", "cat"))
    reaction = {"emoji": "👍", "user_ids": ["bob", "cat"]}
    fields = {"chat_id": "c1", "seq": 7, "message_id": "m1", "user_id": "cat", "emoji": "👍", "added": True}
    assert frames(*delivery_items(event)) == [
        (["ann", "bob", "cat"], None, {"type": "message.reacted", **fields, "reactions": [reaction]})
    ]
    assert service_events(event) == [
        service.MessageReacted(**fields, member_ids=["ann", "bob", "cat"], reacted_at=AT)  # type: ignore[arg-type]
    ]
    assert json.loads(bytes(next(delivery_items(MessageSent(reacted, ("ann",)))).frame))["reactions"] == [reaction]


def test_a_reply_carries_a_quote_of_the_replied_message_in_its_frame_and_the_replied_id_in_its_event() -> None:
    original = Message("m0", "c1", 3, "bob", "k0", "the question " + "x" * 200, AT)
    reply = Message("m1", "c1", 7, "ann", "k1", "the answer", AT, reply_to=original.quote())
    event = MessageSent(reply, ("ann", "bob"))
    frame = json.loads(bytes(next(delivery_items(event)).frame))
    quote = {"message_id": "m0", "seq": 3, "sender_id": "bob", "preview": original.body[:140], "deleted": False}
    assert frame["reply_to"] == quote
    (fact,) = service_events(event)
    assert isinstance(fact, service.MessageSent)
    assert fact.reply_to == "m0"
    sent = {"type": "message.send", "chat_id": "c1", "client_id": "k1", "body": "b", "reply_to": "m0"}
    assert decode_commands(command(sent)) == [SendMessage("ann", "c1", "k1", "b", "s1", "m0")]


def test_a_reaction_command_becomes_a_reaction_to_add_or_take_off() -> None:
    add = {"type": "message.react", "chat_id": "c1", "message_id": "m1", "emoji": "👍"}
    remove = {**add, "remove": True}
    assert decode_commands(commands([(add, "ann", "s1"), (remove, "ann", "s1")])) == [
        ReactToMessage("ann", "c1", "m1", "👍", True, "s1"),
        ReactToMessage("ann", "c1", "m1", "👍", False, "s1"),
    ]


def test_rejections_of_sends_and_errors_of_other_commands() -> None:
    send = CommandRejected("ann", "s1", "message.send", "chat_not_found", "No such chat.", "k1")
    read = CommandRejected("ann", "s1", "read", "chat_not_found", "No such chat.")
    assert frames(*delivery_items(send), *delivery_items(read)) == [
        (
            ["ann"],
            "s1",
            {"type": "message.rejected", "client_id": "k1", "code": "chat_not_found", "reason": "No such chat."},
        ),
        (["ann"], "s1", {"type": "error", "code": "chat_not_found", "reason": "No such chat.", "command": "read"}),
    ]


def test_deletions_removals_and_internal_events() -> None:
    tombstone = MESSAGE.delete("bob", AT)
    assert frames(*delivery_items(MessageDeleted(tombstone, ("ann",))))[0][2] == {
        "type": "message.deleted",
        "chat_id": "c1",
        "seq": 7,
        "message_id": "m1",
        "deleted_by": "bob",
        "deleted_at": "2026-01-02T03:04:05.678000Z",
    }
    assert frames(*delivery_items(MemberRemoved("c1", "cat"))) == [
        (["cat"], None, {"type": "chat.removed", "chat_id": "c1"})
    ]
    assert list(delivery_items(MembershipChanged("c1", 3, ("ann",)))) == []
    assert list(delivery_items(UserTyped("c1", "ann", ()))) == []  # alone in the chat: nobody to tell


def test_a_sync_answer_ends_with_resume_done_for_that_session_only() -> None:
    synced = Synced(
        "ann",
        "s1",
        (SyncedChat("c1", (MESSAGE,), 7, True), SyncedChat("c2", (), 3, False)),
        ("gone",),
    )
    answer = frames(*delivery_items(synced))
    assert all(users == ["ann"] and session == "s1" for users, session, _ in answer)
    assert [frame["type"] for _, _, frame in answer] == ["message.new", "resume.done"]
    assert answer[-1][2] == {
        "type": "resume.done",
        "chats": {"c1": 7, "c2": 3},
        "truncated": ["c1"],
        "removed": ["gone"],
    }


def test_an_outbox_entry_keeps_its_publications_and_the_trace_context_of_its_commit() -> None:
    channel = BusEventChannel(InMemoryMessageBus(ManualClock()), EventMetrics(CollectorRegistry()))
    trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    stored = [Publication(("user.ann", "user.bob"), "delivery", b'{"items":[]}', trace)]
    assert channel.unpack(channel.pack(stored)) == stored
    untraced = [Publication(("user.ann",), "delivery", b'{"items":[]}')]
    assert b"trace" not in channel.pack(untraced), "nothing added while tracing is off"
    assert channel.unpack(channel.pack(untraced)) == untraced


def test_events_are_counted_by_kind_once_per_render() -> None:
    registry = CollectorRegistry()
    channel = BusEventChannel(InMemoryMessageBus(ManualClock()), EventMetrics(registry))
    second = Message("m2", "c1", 8, "ann", "k2", "again", AT)
    channel.render([MessageSent(MESSAGE, ("ann", "bob")), MessageSent(second, ("ann", "bob"))])
    channel.render([MessageAcknowledged(second, "s1")])
    assert registry.get_sample_value("parlour_messaging_events_total", {"kind": "message_sent"}) == 2
    assert registry.get_sample_value("parlour_messaging_events_total", {"kind": "message_acknowledged"}) == 1
