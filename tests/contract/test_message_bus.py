"""The one contract suite of the message bus port (parlour/common/bus/port.py), run on every implementation.

`bus_env` yields a fresh bus per implementation: "memory" (embedded mode) and "amqp" (RabbitMQ, in a
namespace unique to the test, deleted afterwards). `bus_env.peer()` is the same bus seen from another
process: for RabbitMQ a second connection sharing the key-value store, for memory the one bus itself.
The tests at the end reach into RabbitMQ itself (rabbitmqctl, a killed process, a dropped connection).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aio_pika
import msgspec
import pytest

from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.bus.amqp.routes import AmqpRoute
from parlour.common.bus.amqp.workers import CommandWorker
from parlour.common.bus.assignment import partition_of
from parlour.common.bus.memory import InMemoryMessageBus
from parlour.common.bus.policy import RetryPolicy
from parlour.common.bus.port import (
    BusMessage,
    MalformedMessage,
    MessageBus,
    ParkedMessage,
    QueueDepth,
    as_batch_handler,
)
from parlour.common.clock import SystemClock
from parlour.common.errors import Unavailable
from parlour.common.kv.memory import InMemoryKeyValueStore
from tests import services
from tests.waiting import eventually

MAX_ATTEMPTS = 3
WAIT = 20.0  # seconds: generous, never reached when things work


@dataclass
class BusEnv:
    """A bus under test, and a way to reach the same bus from a second process."""

    impl: str
    bus: MessageBus
    namespace: str
    kv: InMemoryKeyValueStore
    peers: list[AmqpMessageBus] = field(default_factory=list)

    async def peer(self) -> MessageBus:
        if self.impl == "memory":
            return self.bus
        peer = await connect_amqp(self.namespace, self.kv)
        self.peers.append(peer)
        return peer


async def connect_amqp(namespace: str, kv: InMemoryKeyValueStore) -> AmqpMessageBus:
    return await AmqpMessageBus.connect(
        services.AMQP_URL, namespace=namespace, kv=kv, clock=SystemClock(), policy=RetryPolicy(MAX_ATTEMPTS, 0.02),
        assignment_interval=0.2, worker_ttl=2.0, publish_timeout=10.0,
    )  # fmt: skip


@pytest.fixture(params=["memory", pytest.param("amqp", marks=pytest.mark.rabbitmq)])
async def bus_env(request: pytest.FixtureRequest) -> AsyncIterator[BusEnv]:
    kv = InMemoryKeyValueStore(SystemClock())
    namespace = services.unique_namespace()
    if request.param == "memory":
        memory = InMemoryMessageBus(SystemClock(), policy=RetryPolicy(MAX_ATTEMPTS, 0.02))
        env = BusEnv("memory", memory, namespace, kv)
        yield env
        await memory.close()
        return
    services.require("rabbitmq")
    amqp = await connect_amqp(namespace, kv)
    env = BusEnv("amqp", amqp, namespace, kv)
    yield env
    failures: list[Exception] = []
    for bus in [*env.peers, amqp]:
        for step in (bus.delete_topology, bus.close):  # every step, even when one fails
            try:
                await step()
            except Exception as error:
                failures.append(error)
    if failures:
        raise failures[0]


class Inbox:
    """Collects what a handler receives, and lets a test wait for it."""

    def __init__(self) -> None:
        self.messages: list[BusMessage] = []
        self.batches: list[list[BusMessage]] = []
        self._arrived = asyncio.Event()

    async def take(self, message: BusMessage) -> None:
        await self.take_batch([message])

    async def take_batch(self, messages: Sequence[BusMessage]) -> None:
        self.batches.append(list(messages))
        self.messages.extend(messages)
        self._arrived.set()

    async def wait_until(self, done: Callable[[list[BusMessage]], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not done(self.messages):
                self._arrived.clear()
                await self._arrived.wait()

    def bodies(self) -> list[bytes]:
        return [message.body for message in self.messages]


def message(body: str | bytes, type_: str = "test.message") -> BusMessage:
    return BusMessage(type_, body.encode() if isinstance(body, str) else body, headers={"traceparent": "00-t-s-01"})


async def parked_with(bus: MessageBus, message_id: str) -> ParkedMessage:
    async def find() -> ParkedMessage | None:
        return next((entry for entry in await bus.parked(1000) if entry.message.message_id == message_id), None)

    return await eventually(find, within=WAIT)


# -- commands ---------------------------------------------------------------------------------------


async def test_commands_keep_publish_order_within_a_partition_under_concurrent_publishers(bus_env: BusEnv) -> None:
    chats, publishers, per_publisher = [f"chat-{n}" for n in range(6)], 4, 40
    inbox, busy = Inbox(), set[int]()

    async def handle(messages: Sequence[BusMessage]) -> None:
        partitions = {partition_of(msgspec.json.decode(m.body)["chat"], 16) for m in messages}
        assert len(partitions) == 1, "a batch holds messages of one partition"
        (partition,) = partitions
        assert partition not in busy, "one batch at a time per partition"
        busy.add(partition)
        await asyncio.sleep(0)
        busy.discard(partition)
        await inbox.take_batch(messages)

    await bus_env.bus.consume_commands(handle, max_batch=8)

    async def publish(publisher: int) -> None:
        for n in range(per_publisher):
            for chat in chats:
                body = msgspec.json.encode({"chat": chat, "publisher": publisher, "n": n})
                await bus_env.bus.send_command(chat, message(body))

    await asyncio.gather(*(publish(p) for p in range(publishers)))
    await inbox.wait_until(lambda got: len(got) >= len(chats) * publishers * per_publisher)
    streams: dict[tuple[str, int], list[int]] = {}
    for received in inbox.messages:
        decoded = msgspec.json.decode(received.body)
        streams.setdefault((decoded["chat"], decoded["publisher"]), []).append(decoded["n"])
    assert all(numbers == list(range(per_publisher)) for numbers in streams.values())
    assert len(streams) == len(chats) * publishers


async def test_a_partition_fails_over_to_a_second_worker_when_the_first_disconnects(bus_env: BusEnv) -> None:
    in_flight: asyncio.Queue[BusMessage] = asyncio.Queue()

    async def stuck(messages: Sequence[BusMessage]) -> None:
        for received in messages:
            in_flight.put_nowait(received)
        await asyncio.Event().wait()  # never finishes: the message stays unacknowledged

    first = await bus_env.bus.consume_commands(stuck)
    await bus_env.bus.send_command("chat-1", message("m1"))
    async with asyncio.timeout(WAIT):
        assert (await in_flight.get()).body == b"m1"
    peer = await bus_env.peer()
    second = Inbox()
    await peer.consume_commands(second.take_batch)
    await first.close()
    await peer.send_command("chat-1", message("m2"))
    await second.wait_until(lambda got: len(got) >= 2)
    assert second.bodies() == [b"m1", b"m2"]


async def test_a_failing_command_is_retried_then_parked_with_its_error_and_attempts(bus_env: BusEnv) -> None:
    calls: list[str] = []

    async def failing(messages: Sequence[BusMessage]) -> None:
        calls.extend(m.message_id for m in messages)
        raise RuntimeError("boom")

    await bus_env.bus.consume_commands(failing)
    bad = message("bad")
    await bus_env.bus.send_command("chat-7", bad)
    parked = await parked_with(bus_env.bus, bad.message_id)
    assert parked.attempts == MAX_ATTEMPTS
    assert "RuntimeError: boom" in parked.error
    assert parked.origin.endswith(f"cmd.{partition_of('chat-7', 16)}")
    assert parked.message.body == b"bad"
    assert parked.message.type == bad.type
    assert parked.message.headers == bad.headers
    assert parked.parked_at > 0
    assert calls == [bad.message_id] * MAX_ATTEMPTS


async def test_a_command_that_fails_then_succeeds_is_not_parked(bus_env: BusEnv) -> None:
    inbox, failures = Inbox(), [0]

    async def flaky(messages: Sequence[BusMessage]) -> None:
        if failures[0] < MAX_ATTEMPTS - 1:
            failures[0] += 1
            raise ConnectionError("database away")
        await inbox.take_batch(messages)

    await bus_env.bus.consume_commands(flaky)
    await bus_env.bus.send_command("chat-3", message("eventually"))
    await inbox.wait_until(lambda got: len(got) == 1)
    assert inbox.bodies() == [b"eventually"]
    assert await bus_env.bus.parked() == []


async def test_a_command_failing_while_a_dependency_is_down_outlasts_its_attempts_and_is_never_parked(
    bus_env: BusEnv,
) -> None:
    # Found by `parlour bench chaos`: a PostgreSQL restart of a few seconds parked users' messages.
    inbox, failures = Inbox(), [0]

    async def database_restarting(messages: Sequence[BusMessage]) -> None:
        if failures[0] < MAX_ATTEMPTS + 3:
            failures[0] += 1
            raise Unavailable("the database is restarting")
        await inbox.take_batch(messages)

    await bus_env.bus.consume_commands(database_restarting)
    await bus_env.bus.send_command("chat-4", message("kept"))
    await inbox.wait_until(lambda got: len(got) == 1)
    assert inbox.bodies() == [b"kept"]
    assert failures[0] == MAX_ATTEMPTS + 3
    assert await bus_env.bus.parked() == []


async def test_a_malformed_message_is_parked_at_once(bus_env: BusEnv) -> None:
    calls: list[str] = []

    async def strict(messages: Sequence[BusMessage]) -> None:
        calls.extend(m.message_id for m in messages)
        if messages[0].type == "undecodable":
            msgspec.json.decode(messages[0].body)
        raise MalformedMessage("no chat id")

    await bus_env.bus.consume_commands(strict)
    undecodable, invalid = message(b"\xff{", "undecodable"), message("{}", "invalid")
    await bus_env.bus.send_command("chat-1", undecodable)
    await bus_env.bus.send_command("chat-1", invalid)
    for sent, error in [(undecodable, "DecodeError"), (invalid, "MalformedMessage: no chat id")]:
        parked = await parked_with(bus_env.bus, sent.message_id)
        assert parked.attempts == 1
        assert error in parked.error
    assert calls == [undecodable.message_id, invalid.message_id]


async def test_a_failing_batch_is_retried_message_by_message(bus_env: BusEnv) -> None:
    inbox, sizes = Inbox(), list[int]()

    async def picky(messages: Sequence[BusMessage]) -> None:
        sizes.append(len(messages))
        if any(m.body == b"bad" for m in messages):
            raise ValueError("bad apple")
        await inbox.take_batch(messages)

    bad = message("bad")
    for sent in (message("good-1"), bad, message("good-2")):
        await bus_env.bus.send_command("chat-5", sent)
    await bus_env.bus.consume_commands(picky, max_batch=10)
    await inbox.wait_until(lambda got: len(got) >= 2)
    parked = await parked_with(bus_env.bus, bad.message_id)
    assert inbox.bodies() == [b"good-1", b"good-2"]
    assert parked.attempts == MAX_ATTEMPTS
    if bus_env.impl == "memory":  # the broker may deliver the three apart; memory batches them for sure
        assert sizes[:4] == [3, 1, 1, 1]


async def test_a_consumer_survives_1000_poison_messages_and_then_processes_a_good_one(bus_env: BusEnv) -> None:
    poison_calls, good = [0], asyncio.Event()
    all_failed = asyncio.Event()

    async def handle(messages: Sequence[BusMessage]) -> None:
        if messages[0].type == "good":
            good.set()
            return
        poison_calls[0] += 1
        if poison_calls[0] == 1000 * MAX_ATTEMPTS:
            all_failed.set()
        raise ValueError("poison")

    await bus_env.bus.consume_commands(handle)
    for start in range(0, 1000, 100):
        batch = [message(str(n), "poison") for n in range(start, start + 100)]
        await asyncio.gather(*(bus_env.bus.send_command("chat-p", poison) for poison in batch))
    await bus_env.bus.send_command("chat-p", message("fine", "good"))
    async with asyncio.timeout(WAIT):
        await good.wait()
        await all_failed.wait()

    async def all_parked() -> list[ParkedMessage] | None:
        parked = await bus_env.bus.parked(2000)
        return parked if len(parked) == 1000 else None

    parked = await eventually(all_parked, within=WAIT, interval=0.2)
    assert {entry.attempts for entry in parked} == {MAX_ATTEMPTS}


# -- events -----------------------------------------------------------------------------------------


async def test_an_event_for_1000_user_keys_reaches_each_holding_route_exactly_once(bus_env: BusEnv) -> None:
    keys = [f"user.{n}" for n in range(1000)]
    first, second, idle = Inbox(), Inbox(), Inbox()
    route_first = await bus_env.bus.open_route(first.take)
    route_second = await (await bus_env.peer()).open_route(second.take)
    route_idle = await bus_env.bus.open_route(idle.take)
    for key in keys[:600]:
        await route_first.bind(key)
    for key in keys[400:]:
        await route_second.bind(key)
    await route_idle.bind("user.elsewhere")
    await bus_env.bus.publish(keys, message("hello", "message.new"))
    # The same publisher's next event arrives after the first: once it is there, every copy is.
    await bus_env.bus.publish(["user.0", "user.999", "user.elsewhere"], message("sentinel", "message.new"))
    for inbox in (first, second, idle):
        await inbox.wait_until(lambda got: any(m.body == b"sentinel" for m in got))
    assert first.bodies() == [b"hello", b"sentinel"]
    assert second.bodies() == [b"hello", b"sentinel"]
    assert idle.bodies() == [b"sentinel"]
    assert first.messages[0].headers == {"traceparent": "00-t-s-01"}


async def test_an_unbound_key_no_longer_reaches_the_route(bus_env: BusEnv) -> None:
    inbox = Inbox()
    route = await bus_env.bus.open_route(inbox.take)
    for key in ("user.1", "user.2", "user.2"):
        await route.bind(key)
    await route.unbind("user.1")
    await route.unbind("user.1")
    await bus_env.bus.publish(["user.1"], message("for user 1"))
    await bus_env.bus.publish(["user.2"], message("for user 2"))
    await inbox.wait_until(lambda got: len(got) >= 1)
    await bus_env.bus.publish(["user.2"], message("again"))
    await inbox.wait_until(lambda got: len(got) >= 2)
    assert inbox.bodies() == [b"for user 2", b"again"]


async def test_binds_and_unbinds_made_at_once_all_take_effect_in_the_order_made(bus_env: BusEnv) -> None:
    # As 500 connects and 100 leavers in one loop iteration do: the route applies them as one burst.
    inbox = Inbox()
    route = await bus_env.bus.open_route(inbox.take)
    for n in range(100):
        await route.bind(f"user.leaving.{n}")
    staying = [f"user.{n}" for n in range(500)]
    await asyncio.gather(
        *(route.bind(key) for key in staying),
        *(route.unbind(f"user.leaving.{n}") for n in range(100)),
        route.bind("user.flapping"),
        route.unbind("user.flapping"),
    )
    await bus_env.bus.publish([*staying, "user.flapping", *(f"user.leaving.{n}" for n in range(100))], message("all"))
    await bus_env.bus.publish(["user.flapping", "user.leaving.0"], message("left"))
    await bus_env.bus.publish(["user.499"], message("sentinel"))
    await inbox.wait_until(lambda got: any(m.body == b"sentinel" for m in got))
    assert inbox.bodies() == [b"all", b"sentinel"]


async def test_a_closed_route_receives_nothing_more(bus_env: BusEnv) -> None:
    closed, open_ = Inbox(), Inbox()
    route = await bus_env.bus.open_route(closed.take)
    other = await bus_env.bus.open_route(open_.take)
    await route.bind("user.1")
    await other.bind("user.1")
    await route.close()
    await bus_env.bus.publish(["user.1"], message("after close"))
    await open_.wait_until(lambda got: len(got) == 1)
    assert closed.messages == []


async def test_subscriptions_match_wildcards_and_compete_for_a_named_queue(bus_env: BusEnv) -> None:
    audit, typing_ = Inbox(), Inbox()
    seen_by: dict[bytes, list[str]] = {}

    def consumer(name: str) -> Callable[[BusMessage], Awaitable[None]]:
        async def take(received: BusMessage) -> None:
            seen_by.setdefault(received.body, []).append(name)
            await audit.take(received)

        return take

    await bus_env.bus.subscribe("audit", ["message.*", "chat.#"], as_batch_handler(consumer("a")))
    await (await bus_env.peer()).subscribe("audit", ["message.*", "chat.#"], as_batch_handler(consumer("b")))
    await bus_env.bus.subscribe("typing", ["typing.#"], as_batch_handler(typing_.take))
    for key in ["message.new", "message.new.extra", "chat", "chat.1.members", "typing.1", "user.1", "message.end"]:
        await bus_env.bus.publish([key], message(key))
    await bus_env.bus.publish(["message.edited", "chat.2"], message("both keys, one copy"))
    await audit.wait_until(lambda got: len(got) >= 5)
    await typing_.wait_until(lambda got: len(got) >= 1)
    expected = [b"both keys, one copy", b"chat", b"chat.1.members", b"message.end", b"message.new"]
    assert sorted(audit.bodies()) == expected
    assert all(len(names) == 1 for names in seen_by.values()), "each message goes to one competing consumer"
    assert typing_.bodies() == [b"typing.1"]


async def test_a_subscription_takes_what_is_waiting_in_batches_in_order(bus_env: BusEnv) -> None:
    batches: list[list[bytes]] = []
    first_taken, release, all_in = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def take(received: Sequence[BusMessage]) -> None:
        batches.append([item.body for item in received])
        first_taken.set()
        if sum(map(len, batches)) == 26:
            all_in.set()
        await release.wait()  # the first batch holds the consumer while the rest piles up

    await bus_env.bus.subscribe("projection", ["user.registered"], take, max_batch=10)
    await bus_env.bus.publish(["user.registered"], message("0"))
    await asyncio.wait_for(first_taken.wait(), 10)
    for index in range(1, 26):
        await bus_env.bus.publish(["user.registered"], message(str(index)))
    release.set()
    await asyncio.wait_for(all_in.wait(), WAIT)
    assert [body for batch in batches for body in batch] == [str(i).encode() for i in range(26)]
    assert max(map(len, batches)) > 1, "waiting messages come together"
    assert max(map(len, batches)) <= 10


async def test_a_subscription_with_linger_waits_for_more_before_taking_a_batch(bus_env: BusEnv) -> None:
    batches: list[list[bytes]] = []
    all_in = asyncio.Event()

    async def take(received: Sequence[BusMessage]) -> None:
        batches.append([item.body for item in received])
        if sum(map(len, batches)) == 5:
            all_in.set()

    # A second is far longer than five publications take; the batch waits for them all.
    await bus_env.bus.subscribe("projection", ["user.registered"], take, max_batch=10, linger=1.0)
    for index in range(5):
        await bus_env.bus.publish(["user.registered"], message(str(index)))
    await asyncio.wait_for(all_in.wait(), WAIT)
    assert batches == [[str(i).encode() for i in range(5)]]


async def test_a_failing_event_handler_is_retried_then_parked(bus_env: BusEnv) -> None:
    async def failing(received: BusMessage) -> None:
        raise KeyError("no such session")

    await bus_env.bus.subscribe("notifications", ["message.new"], as_batch_handler(failing))
    event = message("event", "message.new")
    await bus_env.bus.publish(["message.new"], event)
    parked = await parked_with(bus_env.bus, event.message_id)
    assert parked.attempts == MAX_ATTEMPTS
    assert parked.origin.endswith("svc.notifications")


# -- parking lot ------------------------------------------------------------------------------------


async def test_replay_brings_a_parked_message_back_to_its_handler(bus_env: BusEnv) -> None:
    inbox, healthy = Inbox(), asyncio.Event()

    async def handle(messages: Sequence[BusMessage]) -> None:
        if not healthy.is_set():
            raise RuntimeError("not yet")
        await inbox.take_batch(messages)

    await bus_env.bus.consume_commands(handle)
    first, second = message("first"), message("second")
    await bus_env.bus.send_command("chat-r", first)
    await bus_env.bus.send_command("chat-r", second)
    await parked_with(bus_env.bus, first.message_id)
    await parked_with(bus_env.bus, second.message_id)
    assert len(await bus_env.bus.parked()) == 2, "listing does not remove"
    healthy.set()
    assert await bus_env.bus.replay([first.message_id]) == 1
    await inbox.wait_until(lambda got: len(got) == 1)
    assert inbox.bodies() == [b"first"]
    assert [entry.message.message_id for entry in await bus_env.bus.parked()] == [second.message_id]
    assert await bus_env.bus.replay() == 1
    await inbox.wait_until(lambda got: len(got) == 2)
    assert await bus_env.bus.parked() == []
    assert await bus_env.bus.replay() == 0


async def test_parked_lists_at_most_limit_oldest_first(bus_env: BusEnv) -> None:
    async def failing(messages: Sequence[BusMessage]) -> None:
        raise MalformedMessage()

    await bus_env.bus.consume_commands(failing)
    sent = [message(str(n)) for n in range(5)]
    for each in sent:
        await bus_env.bus.send_command("chat-l", each)
    await parked_with(bus_env.bus, sent[-1].message_id)
    assert [entry.message.body for entry in await bus_env.bus.parked(3)] == [b"0", b"1", b"2"]
    assert len(await bus_env.bus.parked(100)) == 5


async def test_ping_answers_while_open(bus_env: BusEnv) -> None:
    await bus_env.bus.ping()


async def test_queue_depths_show_waiting_commands_their_consumers_and_the_parking_lot(bus_env: BusEnv) -> None:
    bus = bus_env.bus
    partition = bus.partition_of("chat-depth")
    for index in range(3):
        await bus.send_command("chat-depth", message(f"d{index}"))

    async def partition_depth(messages: int, consumers: int) -> QueueDepth | None:
        depths = await bus.queue_depths()
        [depth] = [d for d in depths if d.queue.split(".")[-2:] == ["cmd", str(partition)]]
        return depth if (depth.messages, depth.consumers) == (messages, consumers) else None

    await eventually(lambda: partition_depth(3, 0), what="three commands waiting, nobody consuming")
    [parked] = [depth for depth in await bus.queue_depths() if depth.parked]
    assert parked.messages == 0
    inbox = Inbox()
    worker = await bus.consume_commands(inbox.take_batch, max_batch=10)
    await inbox.wait_until(lambda messages: len(messages) == 3)
    await eventually(lambda: partition_depth(0, 1), what="the partition drained by its one worker")
    await worker.close()


# -- RabbitMQ itself --------------------------------------------------------------------------------


async def rabbitmqctl(*args: str) -> str:
    listing = ("-q", "--no-table-headers") if args[0].startswith("list_") else ()
    process = await asyncio.create_subprocess_exec("rabbitmqctl", *args, *listing, stdout=asyncio.subprocess.PIPE)
    stdout, _ = await process.communicate()
    assert process.returncode == 0, f"rabbitmqctl {args} failed"
    return stdout.decode()


async def queue_names() -> set[str]:
    return set((await rabbitmqctl("list_queues", "name")).split())


def amqp_only(env: BusEnv) -> AmqpMessageBus:
    assert isinstance(env.bus, AmqpMessageBus)
    return env.bus


# The tests below take only the "amqp" parameter of the one fixture.
rabbitmq_only = pytest.mark.parametrize("bus_env", [pytest.param("amqp", marks=pytest.mark.rabbitmq)], indirect=True)


@pytest.mark.rabbitmq
@rabbitmq_only
async def test_amqp_a_command_no_partition_queue_takes_raises_unroutable(bus_env: BusEnv) -> None:
    bus = amqp_only(bus_env)
    connection = await aio_pika.connect(services.AMQP_URL)
    async with connection, connection.channel() as channel:
        await (await channel.get_underlay_channel()).queue_delete(bus.topology.partition_queue(partition_of("c", 16)))
    with pytest.raises(Unavailable) as raised:
        await bus.send_command("c", message("lost?"))
    assert raised.value.code == "unroutable"


@pytest.mark.rabbitmq
@rabbitmq_only
async def test_amqp_a_message_without_type_is_parked_at_once(bus_env: BusEnv) -> None:
    bus = amqp_only(bus_env)
    calls: list[BusMessage] = []

    async def handle(messages: Sequence[BusMessage]) -> None:
        calls.extend(messages)

    await bus.consume_commands(handle)
    connection = await aio_pika.connect(services.AMQP_URL)
    async with connection, connection.channel() as channel:
        exchange = await channel.get_exchange(bus.topology.commands)
        await exchange.publish(aio_pika.Message(b"raw", message_id="raw-1"), routing_key="0")
    parked = await parked_with(bus, "raw-1")
    assert "malformed" in parked.error
    assert parked.origin == bus.topology.partition_queue(0)
    assert calls == []


@pytest.mark.rabbitmq
@rabbitmq_only
async def test_amqp_unbind_removes_the_binding_from_the_broker(bus_env: BusEnv) -> None:
    bus = amqp_only(bus_env)
    route = await bus.open_route(Inbox().take)
    await route.bind("user.kept")
    await route.bind("user.gone")
    await route.unbind("user.gone")
    listed = await rabbitmqctl("list_bindings", "source_name", "destination_name", "routing_key")
    bindings = {tuple(line.split("\t")) for line in listed.splitlines()}
    assert isinstance(route, AmqpRoute)
    queue = route.queue_name
    assert (bus.topology.events, queue, "user.kept") in bindings
    assert (bus.topology.events, queue, "user.gone") not in bindings


_GATEWAY = """
import asyncio, sys
from parlour.common.bus.amqp import AmqpMessageBus
from parlour.common.bus.amqp.routes import AmqpRoute
from parlour.common.bus.amqp.workers import CommandWorker
from parlour.common.bus.policy import RetryPolicy
from parlour.common.clock import SystemClock
from parlour.common.kv.memory import InMemoryKeyValueStore

async def main() -> None:
    bus = await AmqpMessageBus.connect(sys.argv[1], namespace=sys.argv[2], kv=InMemoryKeyValueStore(SystemClock()),
                                       clock=SystemClock(), policy=RetryPolicy(int(sys.argv[3]), 0.02))
    async def handle(message): pass
    route = await bus.open_route(handle)
    await route.bind("user.1")
    print(route.queue_name, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.rabbitmq
@rabbitmq_only
async def test_amqp_a_route_queue_is_gone_once_its_process_is_killed(bus_env: BusEnv) -> None:
    amqp_only(bus_env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _GATEWAY,
        services.AMQP_URL,
        bus_env.namespace,
        str(MAX_ATTEMPTS),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT):
            queue = (await process.stdout.readline()).decode().strip()
        assert queue.startswith(f"{bus_env.namespace}.route.")
        assert queue in await queue_names()
    finally:
        process.kill()
        await process.wait()

    async def gone() -> bool | None:
        return True if queue not in await queue_names() else None

    await eventually(gone, within=WAIT, interval=0.2)


@pytest.mark.rabbitmq
@rabbitmq_only
async def test_amqp_publishing_and_consuming_resume_after_the_broker_drops_the_connection(bus_env: BusEnv) -> None:
    bus = amqp_only(bus_env)
    inbox, events = Inbox(), Inbox()
    gap = asyncio.Event()

    async def on_gap() -> None:
        gap.set()

    await bus.consume_commands(inbox.take_batch, max_batch=16)
    route = await bus.open_route(events.take, on_gap=on_gap)
    await route.bind("user.7")
    assert isinstance(route, AmqpRoute)
    queue_before = route.queue_name
    confirmed: list[str] = []
    target, reached, stop = [100], asyncio.Event(), asyncio.Event()

    async def produce() -> None:
        n = 0
        while not stop.is_set():
            sent = message(str(n))
            try:
                await bus.send_command(f"chat-{n % 7}", sent)
            except Unavailable:
                continue  # not confirmed: the caller would retry; it does not count as sent
            confirmed.append(sent.message_id)
            n += 1
            if len(confirmed) >= target[0]:
                reached.set()

    producer = asyncio.create_task(produce())
    async with asyncio.timeout(WAIT):
        await reached.wait()
    connections = await rabbitmqctl("list_connections", "pid", "client_properties")
    pids = [line.split("\t")[0] for line in connections.splitlines() if bus.connection_name in line]
    assert len(pids) == 1
    await rabbitmqctl("close_connection", pids[0], "test: broker-side close")
    target[0] = len(confirmed) + 200
    reached.clear()
    async with asyncio.timeout(WAIT):
        await reached.wait()
    stop.set()
    await producer
    await inbox.wait_until(lambda got: {m.message_id for m in got} >= set(confirmed))
    assert route.queue_name != queue_before, "the route was declared again on the new connection"
    async with asyncio.timeout(WAIT):
        await gap.wait()  # the route's owner hears that events may have been lost meanwhile
    await bus.publish(["user.7"], message("after the drop"))
    await events.wait_until(lambda got: len(got) == 1)


@pytest.mark.rabbitmq
@rabbitmq_only
async def test_amqp_workers_share_the_partitions_without_overlap(bus_env: BusEnv) -> None:
    bus = amqp_only(bus_env)
    peer = await bus_env.peer()
    first = await bus.consume_commands(Inbox().take_batch)
    second = await peer.consume_commands(Inbox().take_batch)
    assert isinstance(first, CommandWorker)
    assert isinstance(second, CommandWorker)

    async def balanced() -> bool | None:
        shares = first.partitions, second.partitions
        whole = shares[0] | shares[1] == frozenset(range(16)) and not shares[0] & shares[1]
        return True if whole and {len(shares[0]), len(shares[1])} == {8} else None

    await eventually(balanced, within=WAIT)
    await second.close()

    async def taken_over() -> bool | None:
        return True if first.partitions == frozenset(range(16)) else None

    await eventually(taken_over, within=WAIT)
