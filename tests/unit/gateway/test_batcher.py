"""The command batcher: one bus message per partition per flush, bounded, and failures told to sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence

import pytest

from parlour.common.errors import Unavailable
from parlour.gateway.application.batcher import CommandBatcher
from parlour.gateway.application.ports import CommandSink
from parlour.gateway.domain.protocol import Destination
from parlour.gateway.domain.session import Command, Session, SessionLimits


class Sink(CommandSink):
    """Partitions by the key's first letter; records each send; fails on demand."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.failure: Exception | None = None

    def partition_of(self, partition_key: str) -> int:
        return ord(partition_key[0])

    async def send(self, commands: Sequence[tuple[Command, Session]]) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append([command.client_id or "" for command, _ in commands])


def command(chat: str, client_id: str) -> Command:
    return Command("message.send", chat, b"{}", client_id)


def session() -> Session:
    return Session("s1", "alice", SessionLimits(), 0.0)


async def test_commands_of_one_partition_leave_together_in_order() -> None:
    sink, owner = Sink(), session()
    batcher = CommandBatcher(sink)
    for chat, client_id in [("a1", "k1"), ("b1", "k2"), ("a2", "k3")]:
        batcher.submit(command(chat, client_id), owner, lambda: None)
    await batcher.flush()
    assert sorted(sink.sent) == [["k1", "k3"], ["k2"]]
    await batcher.flush()
    assert len(sink.sent) == 2, "nothing is sent twice"


async def test_commands_for_presence_never_share_a_bus_message_with_those_for_messaging() -> None:
    sink, owner = Sink(), session()
    batcher = CommandBatcher(sink)
    batcher.submit(command("alice", "k1"), owner, lambda: None)
    batcher.submit(Command("activity", "alice", b"{}", "k2", destination=Destination.PRESENCE), owner, lambda: None)
    batcher.submit(command("alice", "k3"), owner, lambda: None)
    await batcher.flush()
    assert sorted(sink.sent) == [["k1", "k3"], ["k2"]]


@pytest.mark.parametrize("failure", [Unavailable("the bus is down"), RuntimeError("a bug")])
async def test_a_failed_flush_tells_every_session_of_its_commands(failure: Exception) -> None:
    sink, owner = Sink(), session()
    sink.failure = failure
    woken: list[str] = []
    batcher = CommandBatcher(sink)
    batcher.submit(command("a1", "k1"), owner, lambda: woken.append("k1"))
    batcher.submit(command("a1", "k2"), owner, lambda: woken.append("k2"))
    await batcher.flush()
    assert woken == ["k1", "k2"]
    frames = [json.loads(frame) for frame in owner.data_to_send()]
    errors = [frame for frame in frames if frame["type"] == "error"]
    assert [(frame["code"], frame["client_id"]) for frame in errors] == [("unavailable", "k1"), ("unavailable", "k2")]


async def test_readers_wait_for_room_when_the_batcher_is_full() -> None:
    sink, owner = Sink(), session()
    batcher = CommandBatcher(sink, max_pending=2)
    batcher.submit(command("a1", "k1"), owner, lambda: None)
    await asyncio.wait_for(batcher.room(), 1)  # below the bound: no wait
    batcher.submit(command("a1", "k2"), owner, lambda: None)
    waiting = asyncio.ensure_future(batcher.room())
    await asyncio.sleep(0)
    assert not waiting.done(), "full: the reader waits"
    flusher = asyncio.ensure_future(batcher.run())
    await asyncio.wait_for(waiting, 1)
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    assert sink.sent == [["k1", "k2"]]
