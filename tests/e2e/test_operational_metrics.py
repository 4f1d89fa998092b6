"""The operational metrics of a message's path, read from `/metrics` of a running Parlour (embedded, both
databases): events by kind, bus publish and consume rates, sampled queue depths and the parking lot, the
outbox's lag, commit-to-socket latency, and WebSocket sessions and closes by code. Distributed mode's
RabbitMQ samples are read in tests/integration/test_traces.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.clients import new_account
from tests.harness import make_settings, running_parlour
from tests.scrape import sample
from tests.waiting import eventually
from tests.ws_client import Client, direct_chat


@pytest.fixture
async def http(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, database_url, metrics_sample_seconds=0.1)
    async with running_parlour(settings) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client


async def test_a_sent_message_shows_in_the_rates_latency_queues_and_session_metrics(http: httpx.AsyncClient) -> None:
    ada, bob = await new_account(http, "ada"), await new_account(http, "bob")
    chat_id = await direct_chat(http, ada, bob)
    sender, member = await Client.connect(http, ada), await Client.connect(http, bob)
    for index in range(3):
        await sender.send_message(chat_id, f"m{index}")
    await member.messages(chat_id, 3)

    async def scraped() -> str | None:
        text = (await http.get("/metrics")).text
        consumed = sample(text, "parlour_bus_consumed_total", type="delivery")
        measured = sample(text, "parlour_gateway_delivery_latency_seconds_count")
        # Presence takes the two openings in its own time (its queue lingers for fuller batches).
        opened = sample(text, "parlour_presence_events_total", kind="session.opened")
        snapshots = sample(text, "parlour_presence_frames_total", kind="snapshot")
        ready = consumed and measured == consumed and "parlour_bus_queue_messages{" in text
        return text if ready and opened == 2 and (snapshots or 0) >= 2 else None

    text = await eventually(scraped, what="every delivery consumed and measured, the queues sampled, both openings")
    assert sample(text, "parlour_messaging_events_total", kind="message_sent") == 3
    # Bus messages, not commands: the gateway sends a partition's ready commands as one, messaging a commit's
    # deliveries as one (the chat's creation too, published before anyone was connected to take it).
    published = sample(text, "parlour_bus_published_total", type="client.commands") or 0
    assert 1 <= published <= 3
    assert sample(text, "parlour_bus_consumed_total", type="client.commands") == published
    deliveries = sample(text, "parlour_bus_published_total", type="delivery") or 0
    consumed = sample(text, "parlour_bus_consumed_total", type="delivery") or 0
    assert 2 <= consumed < deliveries  # the messages and the acks, not the creation
    assert sample(text, "parlour_gateway_delivery_latency_seconds_bucket", le="+Inf") is not None
    assert sample(text, "parlour_bus_queue_messages", queue="cmd.0") == 0
    assert sample(text, "parlour_bus_queue_consumers", queue="cmd.0") == 1
    assert sample(text, "parlour_bus_parked_messages", queue="parked") == 0
    assert sample(text, "parlour_outbox_lag_seconds") == 0
    assert sample(text, "parlour_gateway_sessions") == 2
    assert sample(text, "parlour_presence_events_total", kind="session.opened") == 2
    assert (sample(text, "parlour_presence_frames_total", kind="snapshot") or 0) >= 2  # one after each hello
    assert sample(text, "parlour_presence_lapsed_sessions_total") == 0

    await member.close()
    await sender.close()

    async def closes() -> float | None:
        text = (await http.get("/metrics")).text
        closed = sample(text, "parlour_gateway_sessions_closed_total", code="1000")
        return closed if closed == 2 and sample(text, "parlour_gateway_sessions") == 0 else None

    assert await eventually(closes, what="both closes counted by code") == 2
