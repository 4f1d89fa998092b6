"""A client worker process: holds its share of the bench's connections and does what the coordinator says.

The coordinator sends `(command, argument)` over a pipe and reads `(command, result)` back; progress goes
through a shared array of counters (one row per worker) so the coordinator can show a live line without
asking. Commands: provision, assign, direct_chats, chats_with, connect, probe, burst, load, stop_load, reset_stats,
drop, presence, report, close.
"""

from __future__ import annotations

import asyncio
import random
import resource
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from parlour.bench import accounts
from parlour.bench.accounts import Endpoints, SetupError
from parlour.bench.client import Link, open_link
from parlour.bench.http import HttpClient
from parlour.bench.ledger import DeliveryLedger
from parlour.bench.presence import PresenceWatch
from parlour.bench.protocol import (
    DIALECTS,
    Ack,
    Dialect,
    Event,
    New,
    Presence,
    Probe,
    Ready,
    Rejected,
    ServerError,
    body_tag,
    stamp_body,
)
from parlour.bench.stats import LatencyHistogram

COUNTERS = (
    "sent",
    "acked",
    "received",
    "ready",
    "probed",
    "rejected",
    "errors",
    "disconnects",
    "presence",  # presence frames received by any client
    "watched_online",  # a gauge: users the observer's last report shows online
)
SENT, ACKED, RECEIVED, READY, PROBED, REJECTED, ERRORS, DISCONNECTS, PRESENCE, WATCHED_ONLINE = range(len(COUNTERS))
MAX_ERRORS_KEPT = 20
# The reconnecting client (chaos), as docs/web-client.md's: equal-jitter backoff (capped lower than the web
# client's 30 s, so a recovery time measures the server, not the client's patience), a send still unacked
# 10 s after it went out is sent again with the same client id, a gap waits 1.5 s and is then asked for.
BACKOFF_BASE, BACKOFF_CAP = 0.25, 5.0
RESEND_AFTER_NS = 10 * 10**9
GAP_WAIT_NS = int(1.5e9)
RESUME_WAIT_NS = 30 * 10**9
RETRY_SOON_NS = 10**9  # `error unavailable` / `rate_limited` for a send: again after about a second
TEND_EVERY = 0.25


@dataclass
class ClientSpec:
    """One logical client (a user): who it is, where it connects, which chats it is in, where it sends."""

    index: int
    username: str
    user_id: str = ""
    token: str = ""
    gateway: str = ""
    chats: list[str] = field(default_factory=list)
    sends_to: str | None = None
    watches: list[str] = field(default_factory=list)  # user ids whose presence this client observes


@dataclass(frozen=True)
class WorkerPlan:
    slot: int
    dialect: str
    endpoints: Endpoints
    body_size: int = 32
    connect_timeout: float = 30.0
    connect_concurrency: int = 64
    batch: bool = True  # Parlour: ask for `batch` frames (?batch=1), as an efficient client does
    reconnect: bool = False  # chaos: a lost connection is not a failure; reconnect, resume, send again


@dataclass(frozen=True)
class LoadSpec:
    start_ns: int
    duration: float
    rate: float | None  # messages/s from this worker; None = flat out, `window` in flight per sender
    window: int = 4


@dataclass
class ConnectReport:
    connected: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    started_ns: int = 0
    finished_ns: int = 0


@dataclass
class WorkerReport:
    ledger: DeliveryLedger
    ack_latency: LatencyHistogram
    e2e_latency: LatencyHistogram
    cpu_seconds: float
    wall_seconds: float
    last_arrival_ns: int
    last_ready_ns: int
    errors: list[str]
    close_codes: Counter[str]
    load_cpu_percent: float | None  # CPU over the load window alone, when there was one
    recovered: LatencyHistogram = field(default_factory=LatencyHistogram)  # reconnecting: lost -> live


class Client:
    """One logical client's state: its link, messages in flight, resume watermarks, and what it heard."""

    def __init__(self, spec: ClientSpec, worker: Worker) -> None:
        self.spec = spec
        self.worker = worker
        self.link: Link | None = None
        self.pending: dict[str, int] = {}
        self.watermarks: dict[str, int] = dict.fromkeys(spec.chats, 0)
        self.above: dict[str, set[int]] = {}
        self.count = 0
        self.probed = False
        # The reconnecting mode's outbox: client_id -> (frame, when it last went out; 0 = not yet).
        self.outbox: dict[str, tuple[str, int]] = {}
        self.floors: dict[str, int] = {}  # client_id -> own highest acked seq of its chat when first sent
        self.own_acked: dict[str, int] = {}  # chat_id -> highest seq of my own acked messages
        self.reconnecting = False
        self.resume_sent_ns = 0  # a `resume` on the live link awaits its `resume.done` (gap repair)
        self.gap_since_ns = 0

    def dialect(self) -> Dialect:
        plan = self.worker.plan
        dialect: Dialect = DIALECTS[plan.dialect](self.spec.user_id or str(self.spec.index), batch=plan.batch)
        return dialect

    def send_one(self) -> None:
        chat_id = self.spec.sends_to
        reconnect = self.worker.plan.reconnect
        if chat_id is None or (self.link is None and not reconnect):
            return
        self.count += 1
        client_id = f"{self.spec.index}.{self.count}"
        now = time.monotonic_ns()
        body = stamp_body(now, self.worker.plan.body_size, client_id if reconnect else "")
        frame = (self.link.dialect if self.link else self.dialect()).send(chat_id, client_id, self.count, body)
        if reconnect:  # offline, it waits in the outbox as the web client's would
            self.outbox[client_id] = (frame, now if self.link else 0)
            self.floors[client_id] = self.own_acked.get(chat_id, 0)
        if self.link is not None:
            self.link.send_text(frame)
        self.pending[client_id] = now
        self.worker.ledger.sent(chat_id, self.spec.index, client_id)
        self.worker.bump(SENT)

    def flush(self, now: int, *, older_than: int = 0) -> None:
        """(Re)send every outbox entry that has not gone out within `older_than` ns, same client id."""
        if self.link is None:
            return
        for client_id, (frame, sent_ns) in list(self.outbox.items()):
            if now - sent_ns >= older_than:
                self.link.send_text(frame)
                self.outbox[client_id] = (frame, now)

    def repair_gap(self, now: int) -> None:
        """A gap older than GAP_WAIT: ask for it with a `resume` on the live link (the web client pages
        the history; the answer is the same messages)."""
        if self.link is None or self.reconnecting:
            return
        if self.resume_sent_ns and now - self.resume_sent_ns < RESUME_WAIT_NS:
            return
        if not any(self.above.values()):
            self.gap_since_ns = 0
            return
        if not self.gap_since_ns:
            self.gap_since_ns = now
        elif now - self.gap_since_ns >= GAP_WAIT_NS:
            self.resync(now)

    def resync(self, now: int) -> None:
        if self.link is not None:
            frames, _ = self.link.dialect.greeting(dict(self.watermarks))
            for frame in frames:
                self.link.send_text(frame)
            self.resume_sent_ns, self.gap_since_ns = now, 0

    def on_events(self, link: Link, events: list[Event]) -> None:
        now = time.monotonic_ns()
        worker = self.worker
        for event in events:
            if type(event) is New:
                if worker.plan.reconnect:
                    self._note_new(event)
                self._advance(event.chat_id, event.seq)
                worker.ledger.received(event.chat_id, self.spec.index, event.seq)
                if event.sender_id != (self.spec.user_id or str(self.spec.index)):
                    worker.on_arrival(event.body, now)
            elif type(event) is Ack:
                self._on_ack(event, now)
            elif type(event) is Ready:
                self.resume_sent_ns = 0  # the link resolves its `ready` future; `Worker._connect` counts it
            elif type(event) is Presence:
                worker.on_presence(self, event, now)
            elif type(event) is Probe:
                if not self.probed:
                    self.probed = True
                    worker.bump(PROBED)
            elif type(event) is Rejected:
                worker.ledger.rejected += 1
                worker.bump(REJECTED)
                worker.note_error(f"rejected {event.client_id}: {event.code} {event.reason}")
            elif type(event) is ServerError:
                if event.client_id in self.outbox:  # `unavailable`, `rate_limited`: again soon
                    frame, _ = self.outbox[event.client_id]
                    self.outbox[event.client_id] = (frame, now - RESEND_AFTER_NS + RETRY_SOON_NS)
                worker.bump(ERRORS)
                worker.note_error(f"error frame: {event.code} {event.reason}")

    def _note_new(self, event: New) -> None:
        worker = self.worker
        worker.ledger.carried(event.chat_id, event.seq, body_tag(event.body))
        chat_id, seq = event.chat_id, event.seq
        unseen = seq > self.watermarks.get(chat_id, 0) and seq not in self.above.get(chat_id, ())
        if worker.final_read and unseen:
            worker.healed += 1  # it reached this client only because the client asked again

    def _on_ack(self, event: Ack, now: int) -> None:
        self.outbox.pop(event.client_id, None)
        floor = self.floors.pop(event.client_id, None)
        if floor is not None:
            if event.seq <= floor:  # acked after one of mine that was acked before it was even sent
                self.worker.ledger.sender_reorders += 1
            self.own_acked[event.chat_id] = max(self.own_acked.get(event.chat_id, 0), event.seq)
        sent_ns = self.pending.pop(event.client_id, None)
        if sent_ns is not None:
            self.worker.ack_latency.record((now - sent_ns) / 1e9)
        self._advance(event.chat_id, event.seq)
        self.worker.ledger.acked(event.chat_id, self.spec.index, event.client_id, event.seq)
        self.worker.bump(ACKED)
        if self.worker.flat_out_until > now:
            self.send_one()

    def _advance(self, chat_id: str, seq: int) -> None:
        mark = self.watermarks.get(chat_id, 0)
        if seq != mark + 1:
            if seq > mark:
                self.above.setdefault(chat_id, set()).add(seq)
            return
        waiting = self.above.get(chat_id)
        mark = seq
        while waiting and mark + 1 in waiting:
            mark += 1
            waiting.discard(mark)
        self.watermarks[chat_id] = mark

    def on_closed(self, link: Link) -> None:
        current = link is self.link
        if current:
            self.link = None
        if self.worker.plan.reconnect:
            if not link.dropped and current and not self.reconnecting:
                self.worker.ledger.reconnects += 1
                self.worker.bump(DISCONNECTS)
                self.worker.close_codes[f"{link.close_code} {link.close_reason}".strip()] += 1
                self.worker.reconnect(self)
            return
        if not link.dropped:
            self.worker.ledger.unexpected_disconnects += 1
            self.worker.bump(DISCONNECTS)
            self.worker.close_codes[f"{link.close_code} {link.close_reason}".strip()] += 1
            self.worker.note_error(f"client {self.spec.index} disconnected: {link.close_code} {link.close_reason}")


class Worker:
    """The command loop of one worker process."""

    def __init__(self, plan: WorkerPlan, pipe: Connection, counters: Any) -> None:
        self.plan = plan
        self.pipe = pipe
        self.counters = counters
        self.base = plan.slot * len(COUNTERS)
        self.clients: dict[int, Client] = {}
        self.ledger = DeliveryLedger()
        self.ack_latency = LatencyHistogram()
        self.e2e_latency = LatencyHistogram()
        self.errors: list[str] = []
        self.close_codes: Counter[str] = Counter()
        self.last_arrival_ns = 0
        self.last_ready_ns = 0
        self.flat_out_until = 0
        self.load_task: asyncio.Task[None] | None = None
        self._load_mark: tuple[float, float] | None = None
        self.load_cpu_percent: float | None = None
        self.http = HttpClient(plan.connect_concurrency)
        self.watch: PresenceWatch | None = None
        self._stats_since = (time.monotonic(), _cpu_seconds())
        self.closing = False
        self.final_read = False
        self.healed = 0
        self.background: set[asyncio.Task[None]] = set()
        self.recovered = LatencyHistogram()  # reconnecting mode: from a lost connection to live again

    def bump(self, counter: int) -> None:
        self.counters[self.base + counter] += 1

    def note_error(self, message: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)

    def on_presence(self, client: Client, event: Presence, now: int) -> None:
        self.bump(PRESENCE)
        if self.watch is not None and client.spec.watches:
            self.counters[self.base + WATCHED_ONLINE] += self.watch.feed(event.users, now)

    def on_arrival(self, body: str, now: int) -> None:
        self.bump(RECEIVED)
        self.last_arrival_ns = now
        head = body.split(" ", 1)[0]
        if head.isdigit():
            self.e2e_latency.record((now - int(head)) / 1e9)

    async def serve(self) -> None:
        """Answer commands until `exit`."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def read_pipe() -> None:  # a thread: the pipe must stay blocking for large answers
            while True:
                try:
                    message = self.pipe.recv()
                except (EOFError, OSError):
                    message = ("exit", None)
                loop.call_soon_threadsafe(inbox.put_nowait, message)
                if message[0] == "exit":
                    return

        threading.Thread(target=read_pipe, name="bench-commands", daemon=True).start()
        try:
            while True:
                command, argument = await inbox.get()
                if command == "exit":
                    break
                handler: Callable[[Any], Coroutine[Any, Any, Any]] = getattr(self, f"do_{command}")
                try:
                    result = await handler(argument)
                except Exception:
                    self.pipe.send(("error", traceback.format_exc()))
                else:
                    self.pipe.send((command, result))
        finally:
            await self.http.aclose()

    async def do_provision(self, specs: list[ClientSpec]) -> list[tuple[int, str, str]]:
        http, auth = self.http, self.plan.endpoints.auth
        limit = asyncio.Semaphore(16)

        async def one(spec: ClientSpec) -> tuple[int, str, str]:
            async with limit:
                user_id, token = await accounts.sign_up_and_log_in(http, auth, spec.username)
            return spec.index, user_id, token

        return list(await asyncio.gather(*(one(spec) for spec in specs)))

    async def do_assign(self, specs: list[ClientSpec]) -> int:
        for spec in specs:
            self.clients[spec.index] = Client(spec, self)
            if spec.watches:
                self.watch = PresenceWatch(frozenset(spec.watches))
        return len(specs)

    async def do_direct_chats(self, pairs: list[tuple[int, int]]) -> list[str]:
        return await self._direct_chats([(self.clients[a].spec.token, self.clients[b].spec.user_id) for a, b in pairs])

    async def do_chats_with(self, argument: tuple[str, list[int]]) -> list[str]:
        """Each client of `indices` opens a direct chat with the user `user_id` (who is not ours)."""
        user_id, indices = argument
        return await self._direct_chats([(self.clients[index].spec.token, user_id) for index in indices])

    async def _direct_chats(self, pairs: list[tuple[str, str]]) -> list[str]:
        http, api = self.http, self.plan.endpoints.api
        limit = asyncio.Semaphore(16)

        async def one(token: str, other_user_id: str) -> str:
            async with limit:
                return await accounts.create_direct_chat(http, api, token, other_user_id)

        return list(await asyncio.gather(*(one(token, other) for token, other in pairs)))

    async def do_group_chats(self, groups: list[list[int]]) -> list[str]:
        """A group chat per list of client indices, created by its first (all in this worker)."""
        http, api = self.http, self.plan.endpoints.api
        limit = asyncio.Semaphore(16)

        async def one(members: list[int]) -> str:
            owner = self.clients[members[0]].spec
            others = [self.clients[index].spec.user_id for index in members[1:]]
            async with limit:
                return await accounts.create_group_chat(http, api, owner.token, f"chaos {members[0]}", others)

        return list(await asyncio.gather(*(one(members) for members in groups)))

    async def do_connect(self, argument: dict[str, Any]) -> ConnectReport:
        """Connect `indices` (all by default); with `resume`, each waits for resume.done (live, caught up)."""
        indices = argument["indices"] if argument.get("indices") is not None else list(self.clients)
        resume = bool(argument.get("resumes"))
        report = ConnectReport(started_ns=time.monotonic_ns())
        limit = asyncio.Semaphore(self.plan.connect_concurrency)

        async def one(client: Client) -> None:
            async with limit:
                began = time.monotonic_ns()
                try:
                    await self._connect(client, resume)
                except Exception as error:
                    report.failed += 1
                    if len(report.errors) < MAX_ERRORS_KEPT:
                        report.errors.append(f"client {client.spec.index}: {type(error).__name__}: {error}")
                    return
                report.connected += 1
                report.latency.record((time.monotonic_ns() - began) / 1e9)

        await asyncio.gather(*(one(self.clients[index]) for index in indices))
        report.finished_ns = time.monotonic_ns()
        return report

    def reconnect(self, client: Client) -> None:
        """Reconnect `client` in the background: backoff, a fresh pass, resume, then its outbox again."""
        if self.closing or client.reconnecting:
            return
        client.reconnecting = True
        task = asyncio.create_task(self._reconnect(client))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _reconnect(self, client: Client) -> None:
        lost = time.monotonic_ns()
        attempt = 0
        try:
            while not self.closing:
                step = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
                await asyncio.sleep(step / 2 + random.random() * step / 2)  # noqa: S311 - jitter, not secrets
                attempt += 1
                try:
                    await self._connect(client, resume=True)
                except Exception as error:
                    if isinstance(error, SetupError) and error.status == 401:
                        await self._log_in_again(client)
                    self.note_error(f"client {client.spec.index} reconnect: {type(error).__name__}: {error}")
                    continue
                link = client.link
                if link is None or link.transport is None or link.transport.is_disconnected:
                    client.link = None  # closed between `resume.done` and here: its close was not ours to see
                    continue
                self.recovered.record((time.monotonic_ns() - lost) / 1e9)
                client.reconnecting = False
                client.flush(time.monotonic_ns())
                return
        finally:
            client.reconnecting = False

    async def _log_in_again(self, client: Client) -> None:
        try:
            client.spec.token = await accounts.log_in(self.http, self.plan.endpoints.auth, client.spec.username)
        except Exception as error:
            self.note_error(f"client {client.spec.index} log in again: {type(error).__name__}: {error}")

    async def _tend(self) -> None:
        """Reconnecting mode: every TEND_EVERY s, send again what waits too long and ask for gaps."""
        while not self.closing:
            await asyncio.sleep(TEND_EVERY)
            now = time.monotonic_ns()
            for client in self.clients.values():
                if client.link is not None and not client.reconnecting:
                    client.flush(now, older_than=RESEND_AFTER_NS)
                    client.repair_gap(now)

    async def do_start_tending(self, _: object) -> int:
        task = asyncio.create_task(self._tend())
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return len(self.clients)

    async def do_state(self, _: object) -> dict[str, int]:
        """How settled this worker's clients are: offline, outbox entries, open gaps, resumes in flight."""
        clients = self.clients.values()
        return {
            "offline": sum(1 for c in clients if c.link is None or c.reconnecting),
            "outbox": sum(len(c.outbox) for c in clients),
            "gaps": sum(1 for c in clients if any(c.above.values())),
            "resuming": sum(1 for c in clients if c.resume_sent_ns),
            "healed": self.healed,
        }

    async def do_resync(self, _: object) -> int:
        """Every live client asks for what it missed (`resume` with its watermarks): the final read."""
        self.final_read = True
        now = time.monotonic_ns()
        live = [client for client in self.clients.values() if client.link is not None and not client.reconnecting]
        for client in live:
            client.resync(now)
        return len(live)

    async def _connect(self, client: Client, resume: bool) -> None:
        dialect = client.dialect()
        ticket = None
        gateway = client.spec.gateway or self.plan.endpoints.gateways[0]
        if dialect.authenticated:
            ticket = await accounts.issue_pass(self.http, gateway, client.spec.token)
        url = gateway.replace("http", "ws", 1) + dialect.ws_path(ticket)
        chats = dict(client.watermarks) if resume else None
        client.link = await open_link(url, dialect, client, resume=chats, within=self.plan.connect_timeout)
        self.bump(READY)
        self.last_ready_ns = time.monotonic_ns()

    async def do_probe(self, _: object) -> int:
        """Send one warm-up frame from each sender (peers only)."""
        senders = [c for c in self.clients.values() if c.spec.sends_to and c.link]
        for client in senders:
            assert client.link is not None
            client.link.send_text(client.link.dialect.probe())
        return len(senders)

    async def do_burst(self, count: int) -> int:
        """Each sender sends `count` messages at once."""
        senders = [client for client in self.clients.values() if client.spec.sends_to and client.link]
        for client in senders:
            for _ in range(count):
                client.send_one()
        return len(senders) * count

    async def do_load(self, spec: LoadSpec) -> str:
        self.load_task = asyncio.create_task(self._load(spec))
        return "started"

    async def _load(self, spec: LoadSpec) -> None:
        senders = [client for client in self.clients.values() if client.spec.sends_to]
        await asyncio.sleep(max(0.0, (spec.start_ns - time.monotonic_ns()) / 1e9))
        start = time.monotonic_ns()
        end = start + int(spec.duration * 1e9)
        self._load_mark = (time.monotonic(), _cpu_seconds())
        if not senders:
            return
        if spec.rate is None:
            self.flat_out_until = end
            for client in senders:
                for _ in range(spec.window):
                    client.send_one()
            await asyncio.sleep(spec.duration)
            return
        sent = 0
        turn = 0
        while (now := time.monotonic_ns()) < end:
            due = int(spec.rate * (now - start) / 1e9) - sent
            for _ in range(due):
                senders[turn % len(senders)].send_one()
                turn += 1
            sent += max(due, 0)
            await asyncio.sleep(0.001)

    async def do_stop_load(self, _: object) -> int:
        self.flat_out_until = 0
        if self._load_mark is not None:
            since, cpu = self._load_mark
            self.load_cpu_percent = 100 * (_cpu_seconds() - cpu) / max(time.monotonic() - since, 1e-9)
        if self.load_task is not None:
            self.load_task.cancel()
            await asyncio.gather(self.load_task, return_exceptions=True)
            self.load_task = None
        return self.counters[self.base + SENT]  # type: ignore[no-any-return]

    async def do_reset_stats(self, _: object) -> None:
        self.ack_latency = LatencyHistogram()
        self.e2e_latency = LatencyHistogram()
        self._stats_since = (time.monotonic(), _cpu_seconds())

    async def do_drop(self, indices: list[int] | None) -> int:
        """Cut the connections of `indices` (all by default) at once, like a network failure."""
        links = [self.clients[index].link for index in (indices if indices is not None else list(self.clients))]
        dropped = [link for link in links if link is not None]
        for link in dropped:
            link.drop()
        await asyncio.gather(*(link.closed() for link in dropped))
        return len(dropped)

    async def do_close(self, _: object) -> int:
        self.closing = True
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        links = [client.link for client in self.clients.values() if client.link is not None]
        for link in links:
            link.close()
        async with asyncio.timeout(10):
            await asyncio.gather(*(link.closed() for link in links), return_exceptions=True)
        return len(links)

    async def do_presence(self, _: object) -> PresenceWatch | None:
        """The observer's view so far (None in a worker without an observer)."""
        return self.watch

    async def do_report(self, _: object) -> WorkerReport:
        since, cpu = self._stats_since
        return WorkerReport(
            ledger=self.ledger,
            ack_latency=self.ack_latency,
            e2e_latency=self.e2e_latency,
            cpu_seconds=_cpu_seconds() - cpu,
            wall_seconds=time.monotonic() - since,
            last_arrival_ns=self.last_arrival_ns,
            last_ready_ns=self.last_ready_ns,
            errors=self.errors,
            close_codes=self.close_codes,
            load_cpu_percent=self.load_cpu_percent,
            recovered=self.recovered,
        )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_main(plan: WorkerPlan, pipe: Connection, counters: Any) -> None:
    """Entry point of a worker process."""
    import uvloop  # noqa: PLC0415 - only the worker processes need it

    uvloop.run(Worker(plan, pipe, counters).serve())
