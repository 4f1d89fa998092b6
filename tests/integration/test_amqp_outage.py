"""A RabbitMQ outage as a process sees it: the broker stops answering, then comes back.

The bus reaches the broker through a TCP proxy the test controls, so the outage is real for the bus (its
connection dies, reconnecting is refused) while the shared broker keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from parlour.common.bus import BusMessage
from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.clock import SystemClock
from parlour.common.errors import Unavailable
from parlour.common.kv.memory import InMemoryKeyValueStore
from tests import services
from tests.waiting import eventually

pytestmark = pytest.mark.rabbitmq


class Proxy:
    """Forwards TCP connections to the broker until stopped; can start again on the same port."""

    def __init__(self) -> None:
        broker = urlsplit(services.AMQP_URL)
        self.upstream = (broker.hostname or "127.0.0.1", broker.port or 5672)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self) -> str:
        broker = urlsplit(services.AMQP_URL)
        return urlunsplit(broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{self.port}"))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a dead broker would."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _pipe(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        self._writers.update((client_writer, upstream_writer))
        try:
            await asyncio.gather(_copy(client_reader, upstream_writer), _copy(upstream_reader, client_writer))
        finally:
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    services.require("rabbitmq")
    proxy = Proxy()
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_during_an_outage_publishes_wait_then_fail_and_the_bus_comes_back_by_itself(proxy: Proxy) -> None:
    bus = await AmqpMessageBus.connect(
        proxy.url(), namespace=services.unique_namespace(), kv=InMemoryKeyValueStore(SystemClock()),
        clock=SystemClock(), publish_timeout=0.5,
    )  # fmt: skip
    received: list[str] = []
    arrived = asyncio.Event()

    async def handle(message: BusMessage) -> None:
        received.append(message.body.decode())
        arrived.set()

    try:
        route = await bus.open_route(handle)
        await route.bind("user.1")
        await bus.publish(["user.1"], BusMessage("note", b"before"))
        await asyncio.wait_for(arrived.wait(), 10)

        await proxy.stop()

        async def disconnected() -> bool:
            return not bus.connected

        await eventually(disconnected, what="the bus to notice its connection died")
        with pytest.raises(Unavailable):
            await bus.publish(["user.1"], BusMessage("note", b"during"))  # waits publish_timeout, then fails
        with pytest.raises(Unavailable, match="reconnecting"):
            await bus.ping()

        await proxy.start()  # the broker is back, on the address the bus knows

        async def answers() -> bool:
            try:
                await bus.ping()
            except Unavailable:
                return False
            return True

        await eventually(answers, what="the bus to reconnect by itself")
        arrived.clear()
        await bus.publish(["user.1"], BusMessage("note", b"after"))
        await asyncio.wait_for(arrived.wait(), 10)
        assert received == ["before", "after"]  # the route was declared and bound again
    finally:
        await bus.delete_topology()
        await bus.close()


async def test_connecting_to_a_broker_that_does_not_answer_raises_unavailable(proxy: Proxy) -> None:
    await proxy.stop()
    with pytest.raises(Unavailable, match="unreachable"):
        await AmqpMessageBus.connect(
            proxy.url(), namespace=services.unique_namespace(), kv=InMemoryKeyValueStore(SystemClock()),
            clock=SystemClock(),
        )  # fmt: skip
