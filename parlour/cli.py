"""The `parlour` command: run everything, serve one service, run a local cluster, migrate, rotate keys,
inspect parked messages, retire a namespace."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from parlour import cluster as local_cluster
from parlour.auth.service import signing_key_ring
from parlour.bench.cli import bench_app
from parlour.bootstrap import SERVICES, create_app, open_key_value_store, open_message_bus
from parlour.common.bus import MessageBus
from parlour.common.clock import SystemClock
from parlour.common.db import create_engine, migrate
from parlour.common.http.server import ParlourServer, server_config, tune_garbage_collector
from parlour.common.logging import configure_logging
from parlour.common.retire import RetireError, retire
from parlour.common.settings import Mode, Settings

app = typer.Typer(help="Parlour: real-time chat.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Signing keys of the auth service.", no_args_is_help=True)
dlq_app = typer.Typer(help="Parked (dead-lettered) bus messages.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
namespace_app = typer.Typer(help="A deployment's namespace in RabbitMQ and Redis.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(namespace_app, name="namespace")
app.add_typer(bench_app, name="bench")

ServiceName = StrEnum("ServiceName", {name: name for name in SERVICES})  # type: ignore[misc]


def _settings(service_name: str = "parlour", **overrides: object) -> Settings:
    settings = Settings(**{key: value for key, value in overrides.items() if value is not None})  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_format, service_name)
    return settings


def _serve(settings: Settings, services: list[str]) -> None:
    config = server_config(create_app(settings, services), settings)
    tune_garbage_collector()
    ParlourServer(config).run()


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder for the database and signing keys.")] = None,
    without: Annotated[
        list[ServiceName] | None,
        typer.Option(help="Leave this service out (repeatable), e.g. `--without presence` to compare."),
    ] = None,
) -> None:
    """Start every service in one process (embedded mode): SQLite, in-memory bus and store."""
    settings = _settings(mode=Mode.EMBEDDED, host=host, port=port, data_dir=data_dir)
    left_out = {service.value for service in without or []}
    services = [name for name in SERVICES if name not in left_out]
    if not services:
        typer.echo("every service was left out: nothing to run", err=True)
        raise typer.Exit(2)
    _serve(settings, services)


@app.command()
def serve(
    service: Annotated[ServiceName, typer.Argument(help="The service this process runs.")],
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run one service for distributed mode (PostgreSQL, RabbitMQ, Redis from PARLOUR_* settings)."""
    settings = _settings(f"parlour-{service.value}", mode=Mode.DISTRIBUTED, host=host, port=port)
    _serve(settings, [service.value])


@app.command()
def cluster(
    gateways: Annotated[int, typer.Option(min=1, help="Gateway processes.")] = 2,
    messaging: Annotated[int, typer.Option(min=1, help="Messaging processes.")] = 2,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the NGINX front.")] = 8000,
    run_dir: Annotated[Path, typer.Option(help="NGINX configuration, logs and cluster.json.")] = Path(
        "parlour-cluster"
    ),
    nginx_conf: Annotated[Path, typer.Option(help="The site configuration.")] = local_cluster.NGINX_CONF,
) -> None:
    """Run the distributed topology on this machine behind NGINX until Ctrl-C (or SIGTERM), then stop it all."""
    settings = _settings("parlour-cluster", mode=Mode.DISTRIBUTED)
    deployment = local_cluster.LocalCluster(run_dir.resolve(), port, gateways, messaging, site_conf=nginx_conf)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stopping.set())
    try:
        deployment.start()
    except local_cluster.ClusterError as exc:
        typer.echo(f"cluster did not start: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"parlour cluster ({settings.namespace}) on {deployment.url}; logs in {run_dir / 'logs'}; Ctrl-C stops")
    try:
        # Until a signal, or until a process dies (then the rest is stopped too, and the exit code says so).
        while not stopping.wait(0.5):
            if any(member.process.poll() is not None for member in deployment.members):
                typer.echo("a process of the cluster exited; stopping the rest", err=True)
                deployment.stop()
                raise typer.Exit(1)
    finally:
        deployment.stop()
    typer.echo("parlour cluster stopped")


@namespace_app.command("retire")
def namespace_retire(
    namespace: Annotated[str | None, typer.Option(help="The namespace; PARLOUR_NAMESPACE if unset.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do it: without this flag nothing is deleted.")] = False,
) -> None:
    """Delete every RabbitMQ queue and exchange and every Redis key of a namespace (stop its processes first)."""
    settings = _settings(**({"namespace": namespace} if namespace else {}))
    if not yes:
        typer.echo(f"this deletes namespace {settings.namespace!r} for good (queued messages too): add --yes", err=True)
        raise typer.Exit(2)
    try:
        retired = asyncio.run(retire(settings.namespace, settings.amqp_url, settings.redis_url))
    except RetireError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"retired {settings.namespace}: {len(retired.queues)} queue(s), {len(retired.exchanges)} exchange(s), "
        f"{retired.keys} key(s)"
    )


@app.command(name="migrate")
def migrate_command() -> None:
    """Apply every service's database migrations to the configured database."""
    settings = _settings()

    async def apply() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(apply())
    typer.echo(f"migrated {settings.resolved_database_url.split('@')[-1]}")


@keys_app.command("rotate")
def rotate_keys() -> None:
    """Add a new signing key: it signs from now on; older keys verify until their tokens expire."""
    settings = _settings()
    kid = signing_key_ring(settings, SystemClock()).rotate()
    typer.echo(f"new signing key {kid} in {settings.keys_dir}")


@dlq_app.command("list")
def dlq_list(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100) -> None:
    """Show parked messages (oldest first) as JSON lines."""

    async def show() -> None:
        async with _bus() as bus:
            for parked in await bus.parked(limit):
                record = {
                    "message_id": parked.message.message_id,
                    "type": parked.message.type,
                    "origin": parked.origin,
                    "error": parked.error,
                    "attempts": parked.attempts,
                    "parked_at": parked.parked_at,
                    "body": parked.message.body.decode("utf-8", "replace"),
                }
                typer.echo(json.dumps(record))

    asyncio.run(show())


@dlq_app.command("replay")
def dlq_replay(
    message_ids: Annotated[list[str] | None, typer.Argument(help="Ids to replay; all if none.")] = None,
) -> None:
    """Send parked messages back to where they came from."""

    async def replay() -> None:
        async with _bus() as bus:
            count = await bus.replay(message_ids or None)
        typer.echo(f"replayed {count} message(s)")

    asyncio.run(replay())


@asynccontextmanager
async def _bus() -> AsyncIterator[MessageBus]:
    # Parked messages live in RabbitMQ; an embedded process keeps its own in memory, out of reach here.
    settings = _settings(mode=Mode.DISTRIBUTED)
    clock = SystemClock()
    kv = await open_key_value_store(settings, clock)
    try:
        bus = await open_message_bus(settings, clock, kv)
        try:
            yield bus
        finally:
            await bus.close()
    finally:
        await kv.close()


def main() -> None:
    """Entry point of the `parlour` script."""
    app()
