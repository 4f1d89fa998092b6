"""The messaging use cases wired on in-memory adapters, as the service wires them on SQL and the bus."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from parlour.common.clock import ManualClock
from parlour.messaging.application.access import MembershipCache
from parlour.messaging.application.chats import ChatHandlers
from parlour.messaging.application.messages import MessageHandlers
from parlour.messaging.application.processor import CommandProcessor
from parlour.messaging.domain.messages import CreateGroup
from parlour.messaging.domain.model import ChatView
from parlour.messaging.service import assemble_messaging
from tests.unit.messaging.fakes import FixedLookup, MemoryStore, RecordingPublisher

USERS = ("ann", "bob", "cat", "dan", "eve")


@dataclass
class World:
    store: MemoryStore
    events: RecordingPublisher
    clock: ManualClock
    access: MembershipCache
    lookup: FixedLookup
    chats: ChatHandlers
    messages: MessageHandlers
    processor: CommandProcessor

    async def group(self, owner: str = "ann", *members: str, title: str = "Team") -> ChatView:
        return await self.chats.create_group(CreateGroup(owner, title, list(members or ("bob", "cat"))))


@pytest.fixture
def world() -> World:
    store, events, clock = MemoryStore(), RecordingPublisher(), ManualClock()
    counter = itertools.count(1)

    def ids() -> str:
        return f"id{next(counter)}"

    lookup = FixedLookup(*USERS)
    # The same builder as a process's (`wire_messaging`), on in-memory ports.
    messaging = assemble_messaging(store, clock, events, lookup, ids=ids)
    return World(
        store=store,
        events=events,
        clock=clock,
        access=messaging.access,
        lookup=lookup,
        chats=messaging.chats,
        messages=messaging.messages,
        processor=messaging.processor,
    )
