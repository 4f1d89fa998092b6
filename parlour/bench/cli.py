"""`parlour bench`: load and correctness benchmark of a Parlour deployment (or of a peer server).

    parlour bench send --topology embedded --duration 20
    parlour bench fanout --topology distributed --members 1000
    parlour bench connections --topology fastapi-peer --connections 5000
    parlour bench storm --url http://127.0.0.1:8000 --clients 500
    parlour bench connections --topology distributed --no-presence
    parlour bench chaos --clients 1000 --messages 100000 --faults-each 2
    parlour bench soak --rate 1000 --duration 1800
    parlour bench --compare a.json b.json

Exit status: 0 when every correctness check passed, 1 when one failed (lost, duplicated, reordered,
unacknowledged, rejected, disconnected), 2 when the run could not be set up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated

import typer

from parlour.bench import presence as presence_checks
from parlour.bench import webhooks as webhook_checks
from parlour.bench.accounts import Endpoints, SetupError
from parlour.bench.ledger import Verdict
from parlour.bench.result import BenchResult, render_comparison, render_table
from parlour.bench.session import Options, ScenarioError, Session
from parlour.bench.target import BENCH_ENV, TOPOLOGIES, Target, attached, launch

bench_app = typer.Typer(help="Load and correctness benchmark: send, fanout, connections, storm.", add_completion=False)

Topology = Annotated[str, typer.Option(help=f"Start this target: {' | '.join(TOPOLOGIES)}.")]
Url = Annotated[str | None, typer.Option(help="Attach to a running target at this base URL instead.")]
AuthUrl = Annotated[str | None, typer.Option(help="With --url: the auth service's base URL, if elsewhere.")]
ApiUrl = Annotated[str | None, typer.Option(help="With --url: the messaging REST base URL, if elsewhere.")]
GatewayUrl = Annotated[list[str] | None, typer.Option(help="With --url: a gateway base URL (repeat for more).")]
GatewayPid = Annotated[list[int] | None, typer.Option(help="With --url: a gateway pid to measure (repeatable).")]
Dialect = Annotated[str, typer.Option(help="With --url: parlour | fastapi | socketio.")]
Messaging = Annotated[int, typer.Option(min=1, help="Distributed: messaging processes.")]
Gateways = Annotated[int, typer.Option(min=1, help="Distributed: gateway processes.")]
Workers = Annotated[int | None, typer.Option(min=1, help="Client processes (default: one per 2,000 clients).")]
Out = Annotated[Path | None, typer.Option(help="Write the result as JSON here.")]
LogLevel = Annotated[str, typer.Option(help="Log level of the started target's processes.")]
Progress = Annotated[bool, typer.Option(help="Show a live progress line.")]
Duration = Annotated[float, typer.Option(min=0.5, help="Seconds of load.")]
Rate = Annotated[float, typer.Option(min=0, help="Target messages/s in total; 0 = flat out.")]
Window = Annotated[int, typer.Option(min=1, help="Flat out: messages in flight per sender.")]
Batch = Annotated[bool, typer.Option(help="Parlour: receive several waiting frames as one `batch` frame.")]
Profile = Annotated[
    Path | None, typer.Option(help="py-spy the target's processes while measuring; stacks go to this folder.")
]
Presence = Annotated[
    bool,
    typer.Option(
        help="Parlour: run the presence service (embedded `parlour run --without presence` when off; distributed, "
        "one `parlour serve presence` or none). With --url: whether the target runs it."
    ),
]
Notifications = Annotated[
    bool,
    typer.Option(
        help="Parlour: run the notifications service (embedded `parlour run --without notifications` when off; "
        "distributed, one `parlour serve notifications` or none)."
    ),
]
BodySize = Annotated[int, typer.Option(min=1, max=60_000, help="Bytes per message body.")]


@bench_app.callback(invoke_without_command=True)
def bench(
    context: typer.Context,
    compare: Annotated[
        tuple[Path, Path] | None, typer.Option(help="Print B/A ratios of two result files: --compare A.json B.json")
    ] = None,
) -> None:
    """Benchmark a Parlour deployment, checking every message while it measures."""
    if compare is not None:
        typer.echo(render_comparison(BenchResult.read(compare[0]), BenchResult.read(compare[1])))
        raise typer.Exit(0)
    if context.invoked_subcommand is None:
        typer.echo(context.get_help())
        raise typer.Exit(0)


@contextmanager
def _target(
    topology: str,
    url: str | None,
    auth_url: str | None,
    api_url: str | None,
    gateway_url: list[str] | None,
    gateway_pid: list[int] | None,
    dialect: str,
    messaging: int,
    gateways: int,
    log_level: str,
    presence: bool = True,
    notifications: bool = True,
) -> Iterator[Target]:
    if url is not None:
        base = url.rstrip("/")
        endpoints = Endpoints(auth_url or base, api_url or base, tuple(gateway_url or [base]))
        yield attached(endpoints, dialect, list(gateway_pid or []))
        return
    started = launch(
        topology,
        messaging=messaging,
        gateways=gateways,
        log_level=log_level,
        presence=presence,
        notifications=notifications,
    )
    with started as target:
        yield target


def _execute(
    name: str,
    target_options: dict[str, object] | Callable[[], AbstractContextManager[Target]],
    options: Options,
    out: Path | None,
    body: Callable[[Session], BenchResult],
) -> None:
    opened = target_options if callable(target_options) else lambda: _target(**target_options)  # type: ignore[arg-type]
    try:
        with opened() as target:
            if target.env:
                typer.echo(
                    f"target: {target.name}; bench settings: "
                    + ", ".join(f"{key}={value}" for key, value in target.env.items() if key in BENCH_ENV)
                    + " (cheap hashing and no login limit: this measures chat, not argon2)",
                    err=True,
                )
            result = body(Session(name, target, options))
    except (ScenarioError, SetupError, RuntimeError) as error:
        typer.secho(f"parlour bench {name}: could not run: {error}", fg="red", err=True)
        raise typer.Exit(2) from error
    typer.echo(render_table(result))
    if out is not None:
        result.write(out)
        typer.echo(f"result written to {out}")
    if not result.ok:
        checks = (*Verdict.VIOLATIONS, *presence_checks.VIOLATIONS, *webhook_checks.VIOLATIONS)
        tolerated = Verdict.TOLERATED_UNDER_FAULTS if result.correctness.get("at_least_once") else ()
        violations = {k: v for k, v in result.correctness.items() if k in checks and v and k not in tolerated}
        failed = {
            k: v
            for k in ("soak_checks_failed", "faults_unrecovered_unsettled_or_parked")
            if (v := result.correctness.get(k))
        }
        typer.secho(f"CORRECTNESS FAILED: {violations | failed}", fg="red", bold=True, err=True)
        raise typer.Exit(1)


@bench_app.command()
def send(
    users: Annotated[int, typer.Option(min=2, help="Users, in pairs, each pair one direct chat.")] = 200,
    rate: Rate = 0,
    duration: Duration = 20,
    window: Window = 4,
    body_size: BodySize = 32,
    topology: Topology = "embedded",
    url: Url = None,
    auth_url: AuthUrl = None,
    api_url: ApiUrl = None,
    gateway_url: GatewayUrl = None,
    gateway_pid: GatewayPid = None,
    dialect: Dialect = "parlour",
    messaging: Messaging = 1,
    gateways: Gateways = 1,
    workers: Workers = None,
    out: Out = None,
    log_level: LogLevel = "WARNING",
    progress: Progress = True,
    profile: Profile = None,
    batch: Batch = True,
    presence: Presence = True,
    notifications: Notifications = True,
) -> None:
    """U users in 1:1 chats send: delivered msgs/s, ack and end-to-end latency."""
    from parlour.bench.scenarios import send as scenario  # noqa: PLC0415

    target_options = dict(locals())
    _execute(
        "send",
        _pick(target_options),
        Options(
            workers=workers,
            body_size=body_size,
            progress=progress,
            profile_dir=profile,
            batch=batch,
            presence=presence,
        ),
        out,
        lambda session: scenario.run(session, users=users, rate=rate or None, duration=duration, window=window),
    )


@bench_app.command()
def fanout(
    members: Annotated[int, typer.Option(min=2, help="Members of the one group.")] = 1000,
    offline: Annotated[
        int,
        typer.Option(
            min=0,
            help="Of them, members who never connect; with notifications, each has a webhook to the bench's "
            "receiver, which counts what arrives.",
        ),
    ] = 0,
    rate: Rate = 0,
    duration: Duration = 10,
    window: Window = 16,
    body_size: BodySize = 32,
    topology: Topology = "embedded",
    url: Url = None,
    auth_url: AuthUrl = None,
    api_url: ApiUrl = None,
    gateway_url: GatewayUrl = None,
    gateway_pid: GatewayPid = None,
    dialect: Dialect = "parlour",
    messaging: Messaging = 1,
    gateways: Gateways = 1,
    workers: Workers = None,
    out: Out = None,
    log_level: LogLevel = "WARNING",
    progress: Progress = True,
    profile: Profile = None,
    batch: Batch = True,
    presence: Presence = True,
    notifications: Notifications = True,
) -> None:
    """One group of M members: deliveries/s and delivery latency."""
    from parlour.bench.scenarios import fanout as scenario  # noqa: PLC0415

    target_options = dict(locals())
    _execute(
        "fanout",
        _pick(target_options),
        Options(
            workers=workers,
            body_size=body_size,
            progress=progress,
            profile_dir=profile,
            batch=batch,
            presence=presence,
        ),
        out,
        lambda session: scenario.run(
            session, members=members, offline=offline, rate=rate or None, duration=duration, window=window
        ),
    )


@bench_app.command()
def connections(
    connections: Annotated[int, typer.Option(min=1, help="Idle connections to open.")] = 1000,
    idle: Annotated[float, typer.Option(min=0.5, help="Seconds to hold them idle while measuring CPU.")] = 10,
    concurrency: Annotated[int, typer.Option(min=1, help="Connects in flight per client process.")] = 64,
    topology: Topology = "embedded",
    url: Url = None,
    auth_url: AuthUrl = None,
    api_url: ApiUrl = None,
    gateway_url: GatewayUrl = None,
    gateway_pid: GatewayPid = None,
    dialect: Dialect = "parlour",
    messaging: Messaging = 1,
    gateways: Gateways = 1,
    workers: Workers = None,
    out: Out = None,
    log_level: LogLevel = "WARNING",
    progress: Progress = True,
    profile: Profile = None,
    batch: Batch = True,
    presence: Presence = True,
    notifications: Notifications = True,
) -> None:
    """N idle authenticated connections: connects/s, gateway memory and CPU per connection."""
    from parlour.bench.scenarios import connections as scenario  # noqa: PLC0415

    target_options = dict(locals())
    options = Options(
        workers=workers,
        connect_concurrency=concurrency,
        progress=progress,
        profile_dir=profile,
        batch=batch,
        presence=presence,
    )
    _execute(
        "connections",
        _pick(target_options),
        options,
        out,
        lambda session: scenario.run(session, connections=connections, idle=idle),
    )


@bench_app.command()
def storm(
    clients: Annotated[int, typer.Option(min=1, help="Clients cut off at once (each has a partner that stays).")] = 500,
    messages: Annotated[int, typer.Option(min=0, help="Messages each partner sends while they are away.")] = 5,
    concurrency: Annotated[int, typer.Option(min=1, help="Reconnects in flight per client process.")] = 64,
    presence_bound: Annotated[
        float,
        typer.Option(
            min=0,
            help="With presence: every storm client must be shown online to an observer within the "
            "reconnects' duration plus this many seconds.",
        ),
    ] = 2.0,
    topology: Topology = "embedded",
    url: Url = None,
    auth_url: AuthUrl = None,
    api_url: ApiUrl = None,
    gateway_url: GatewayUrl = None,
    gateway_pid: GatewayPid = None,
    dialect: Dialect = "parlour",
    messaging: Messaging = 1,
    gateways: Gateways = 1,
    workers: Workers = None,
    out: Out = None,
    log_level: LogLevel = "WARNING",
    progress: Progress = True,
    profile: Profile = None,
    batch: Batch = True,
    presence: Presence = True,
    notifications: Notifications = True,
) -> None:
    """N clients drop at once and resume: time until all are live, caught up, and (presence) shown online."""
    from parlour.bench.scenarios import storm as scenario  # noqa: PLC0415

    target_options = dict(locals())
    _execute(
        "storm",
        _pick(target_options),
        Options(
            workers=workers,
            connect_concurrency=concurrency,
            progress=progress,
            profile_dir=profile,
            batch=batch,
            presence=presence,
        ),
        out,
        lambda session: scenario.run(session, clients=clients, messages=messages, presence_bound=presence_bound),
    )


@bench_app.command()
def chaos(
    clients: Annotated[int, typer.Option(min=4, help="Clients: half in direct chats, half in groups.")] = 1000,
    messages: Annotated[int, typer.Option(min=1, help="Send until this many are acknowledged.")] = 100_000,
    rate: Annotated[float, typer.Option(min=1, help="Messages/s offered in total.")] = 500,
    group_size: Annotated[int, typer.Option(min=3, help="Members of each group chat.")] = 8,
    faults_each: Annotated[int, typer.Option(min=1, help="Times each fault happens.")] = 2,
    spacing: Annotated[float, typer.Option(min=0, help="Seconds between two pairs of faults.")] = 20,
    down: Annotated[float, typer.Option(min=0, help="Seconds a killed process or server stays down.")] = 3,
    settle_timeout: Annotated[float, typer.Option(min=1, help="Bound on the wait for quiescence.")] = 180,
    keep_logs: Annotated[Path | None, typer.Option(help="Copy every process's and server's log here.")] = None,
    body_size: BodySize = 64,
    workers: Workers = None,
    out: Out = None,
    log_level: LogLevel = "WARNING",
    progress: Progress = True,
) -> None:
    """Two gateways, two messaging workers on private servers; kill -9 and restarts while clients chat."""
    from parlour.bench import servers  # noqa: PLC0415
    from parlour.bench.scenarios import chaos as scenario  # noqa: PLC0415
    from parlour.bench.target import Backing, distributed  # noqa: PLC0415

    missing = servers.available()
    if missing:
        typer.secho(f"parlour bench chaos: could not run: {missing}", fg="red", err=True)
        raise typer.Exit(2)
    stack: list[servers.PrivateServers] = []

    @contextmanager
    def target() -> Iterator[Target]:
        with servers.private_servers() as private:
            stack.append(private)
            backing = Backing(private.postgres.url, private.rabbitmq.url, private.redis.url, private=True)
            with distributed(messaging=2, gateways=2, log_level=log_level, backing=backing) as started:
                try:
                    yield started
                finally:
                    if keep_logs is not None:
                        servers.copy_logs([started.log_dir, private.root], keep_logs)

    options = Options(workers=workers, body_size=body_size, progress=progress, reconnect=True)
    _execute(
        "chaos",
        target,
        options,
        out,
        lambda session: scenario.run(
            session,
            stack[0],
            clients=clients,
            messages=messages,
            rate=rate,
            group_size=group_size,
            faults_each=faults_each,
            spacing=spacing,
            down=down,
            settle_timeout=settle_timeout,
        ),
    )


@bench_app.command()
def soak(
    users: Annotated[int, typer.Option(min=2, help="Users, in pairs, each pair one direct chat.")] = 200,
    rate: Annotated[float, typer.Option(min=1, help="Messages/s offered in total.")] = 1000,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of load.")] = 1800,
    interval: Annotated[float, typer.Option(min=1, help="Seconds between two samples.")] = 10,
    warmup: Annotated[float | None, typer.Option(help="Seconds before RSS counts (default: a tenth).")] = None,
    max_rss_growth: Annotated[float, typer.Option(help="Fail at this RSS growth after warm-up, %.")] = 5.0,
    max_fd_drift: Annotated[int, typer.Option(min=0, help="Fail when a process's descriptors drift more.")] = 10,
    messaging: Messaging = 2,
    gateways: Gateways = 2,
    body_size: BodySize = 64,
    workers: Workers = None,
    out: Out = None,
    log_level: LogLevel = "WARNING",
    progress: Progress = True,
) -> None:
    """A steady rate for a long time: RSS, descriptors, queues, keys and connections; nothing left after."""
    from parlour.bench.scenarios import soak as scenario  # noqa: PLC0415
    from parlour.bench.target import distributed  # noqa: PLC0415

    _execute(
        "soak",
        lambda: distributed(messaging=messaging, gateways=gateways, log_level=log_level),
        Options(workers=workers, body_size=body_size, progress=progress),
        out,
        lambda session: scenario.run(
            session,
            users=users,
            rate=rate,
            duration=duration,
            interval=interval,
            warmup=duration / 10 if warmup is None else warmup,
            max_rss_growth=max_rss_growth,
            max_fd_drift=max_fd_drift,
        ),
    )


_TARGET_KEYS = (
    "topology",
    "url",
    "auth_url",
    "api_url",
    "gateway_url",
    "gateway_pid",
    "dialect",
    "messaging",
    "gateways",
    "log_level",
    "presence",
    "notifications",
)


def _pick(values: dict[str, object]) -> dict[str, object]:
    return {key: values[key] for key in _TARGET_KEYS}
