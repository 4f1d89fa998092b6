"""Traces: off by default with no SDK at all; on, context rides in bus headers through the in-memory bus.

The SDK's tracer is handed to `parlour.common.tracing` by monkeypatching (a global tracer provider can be
set once per process, and the rest of the suite must run with tracing off).
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Iterator, Sequence

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from parlour.common import tracing
from parlour.common.bus.instrumented import InstrumentedMessageBus
from parlour.common.bus.memory import InMemoryMessageBus
from parlour.common.bus.port import BusMessage
from parlour.common.clock import ManualClock
from parlour.common.logging import configure_logging
from parlour.common.metrics import Metrics
from parlour.common.settings import LogFormat


def test_traces_are_wanted_only_with_an_otlp_endpoint_and_the_sdk_not_disabled() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})


def test_without_an_endpoint_an_app_runs_on_the_no_op_api_and_never_loads_the_sdk() -> None:
    script = """
import asyncio, sys, tempfile
from pathlib import Path
from opentelemetry import trace
from parlour.bootstrap import Overrides, create_app
from parlour.common import tracing
from parlour.common.settings import Settings

async def main():
    app = create_app(Settings(_env_file=None, data_dir=Path(tempfile.mkdtemp())), overrides=Overrides(migrate=True))
    async with app.router.lifespan_context(app):
        pass

asyncio.run(main())
assert not tracing.enabled
# (redis-py imports the SDK's metrics package for its own observability hooks: not the tracing SDK)
assert "opentelemetry.sdk.trace" not in sys.modules, "the tracing SDK was imported"
print(type(trace.get_tracer_provider()).__name__)
"""
    env = {"PATH": "/usr/bin:/bin", "PARLOUR_PASSWORD_TIME_COST": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ProxyTracerProvider")  # the API's no-op stand-in


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "enabled", True)
    monkeypatch.setattr(tracing, "tracer", lambda: provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def test_an_event_carries_its_trace_through_the_in_memory_bus_to_the_routes_consumer(
    spans: InMemorySpanExporter,
) -> None:
    bus = InstrumentedMessageBus(InMemoryMessageBus(ManualClock()), Metrics())
    got: asyncio.Queue[BusMessage] = asyncio.Queue()

    async def handle(message: BusMessage) -> None:
        await got.put(message)

    route = await bus.open_route(handle)
    await route.bind("user.u1")
    with tracing.tracer().start_as_current_span("send") as sender:
        await bus.publish(["user.u1"], BusMessage("delivery", b"{}"))
    message = await asyncio.wait_for(got.get(), 5)
    await route.close()
    await bus.close()

    assert message.headers["traceparent"].split("-")[1] == format(sender.get_span_context().trace_id, "032x")
    [publish] = named(spans, "publish delivery")
    [consume] = named(spans, "consume delivery")
    assert publish.parent is not None
    assert publish.parent.span_id == sender.get_span_context().span_id
    assert consume.parent is not None
    assert consume.parent.span_id == publish.context.span_id
    assert consume.context.trace_id == sender.get_span_context().trace_id


async def test_a_batch_is_the_child_of_its_first_message_and_links_every_message(spans: InMemorySpanExporter) -> None:
    bus = InstrumentedMessageBus(InMemoryMessageBus(ManualClock(), partitions=1), Metrics())
    sent = []
    for index in range(2):
        with tracing.tracer().start_as_current_span(f"send {index}") as sender:
            await bus.send_command("chat", BusMessage("client.commands", b"{}"))
        sent.append(sender.get_span_context())
    handled: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handle(messages: Sequence[BusMessage]) -> None:
        handled.set_result(len(messages))

    worker = await bus.consume_commands(handle, max_batch=10)
    assert await asyncio.wait_for(handled, 5) == 2
    await worker.close()
    await bus.close()

    [consume] = named(spans, "consume client.commands")
    publishes = named(spans, "publish client.commands")
    assert consume.context.trace_id == sent[0].trace_id  # the first message's trace
    assert {link.context.span_id for link in consume.links} == {p.context.span_id for p in publishes}
    assert {p.context.trace_id for p in publishes} == {context.trace_id for context in sent}


async def test_with_tracing_off_a_message_travels_without_trace_headers() -> None:
    bus = InstrumentedMessageBus(InMemoryMessageBus(ManualClock()), Metrics())
    got: asyncio.Queue[BusMessage] = asyncio.Queue()

    async def handle(message: BusMessage) -> None:
        await got.put(message)

    route = await bus.open_route(handle)
    await route.bind("user.u1")
    await bus.publish(["user.u1"], BusMessage("delivery", b"{}"))
    message = await asyncio.wait_for(got.get(), 5)
    await route.close()
    await bus.close()
    assert "traceparent" not in message.headers


def test_a_line_logged_in_a_span_carries_its_ids_under_ecs_names(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    root, handlers, level = logging.getLogger(), logging.getLogger().handlers[:], logging.getLogger().level
    try:
        configure_logging("INFO", LogFormat.JSON, "parlour-gateway")
        with tracing.tracer().start_as_current_span("work") as span:
            structlog.get_logger("parlour.test").info("inside")
        structlog.get_logger("parlour.test").info("outside")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines()[-2:])
    assert inside["trace.id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span.id"] == format(span.get_span_context().span_id, "016x")
    assert "trace.id" not in outside
