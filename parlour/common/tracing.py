"""OpenTelemetry traces: exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else nothing.

Off by default, in both modes: no SDK is loaded, no tracer provider is set (the API's no-op one stays),
and the hot paths ask one question, `tracing.enabled` (a module attribute), before they build anything
of a span. On, `enable_tracing` installs the SDK's provider with a batch span processor and the OTLP/HTTP
exporter, which reads the standard `OTEL_*` variables itself (endpoint, headers, timeout); the resource's
`service.name` is the process's (`parlour-gateway`, ...) unless `OTEL_SERVICE_NAME` says otherwise.

Context crosses processes in W3C `traceparent`/`tracestate` headers: in the HTTP edge's requests, and in
every bus message's headers (parlour/common/bus/instrumented.py, AMQP headers and the in-memory bus alike).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, StatusCode

__all__ = [
    "NO_SPAN", "Link", "Span", "SpanKind", "StatusCode", "current", "enable_tracing", "enabled", "extract", "inject",
    "links_of", "new_trace", "span", "tracer",
]  # fmt: skip

enabled = False  # the one cheap check of the hot paths; True only once `enable_tracing` installed the SDK

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_shutdown: Callable[[], None] | None = None


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces (an OTLP endpoint is set, and the SDK is not disabled)."""
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return any(environ.get(name) for name in ENDPOINT_VARIABLES)


def enable_tracing(service_name: str) -> Callable[[], None] | None:
    """Install the SDK's tracer provider exporting over OTLP/HTTP, if `wanted()`; returns its shutdown
    (which flushes the spans still queued), or None when tracing stays off. Once per process: a second
    call returns the first one's shutdown."""
    global enabled, _shutdown  # noqa: PLW0603 (a module attribute is the hot paths' cheapest check)
    if not wanted():
        return None
    if _shutdown is not None:
        return _shutdown
    # Imported here: a process without an endpoint never loads the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    enabled = True
    _shutdown = provider.shutdown
    return _shutdown


def tracer() -> trace.Tracer:
    """Parlour's tracer (the no-op one while tracing is off)."""
    return trace.get_tracer("parlour")


NO_SPAN: AbstractContextManager[Any] = contextlib.nullcontext()  # what `span` is while tracing is off


def span(
    name: str,
    *,
    context: otel_context.Context | None = None,
    links: Sequence[Link] = (),
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> AbstractContextManager[Any]:
    """A span made current for the `with` block, or nothing at all while tracing is off."""
    if not enabled:
        return NO_SPAN
    return tracer().start_as_current_span(name, context=context, kind=kind, links=links, attributes=attributes)


def new_trace() -> tuple[otel_context.Context, list[Link]]:
    """For a span that starts a trace of its own inside another one (a message received on a long-lived
    WebSocket): no parent, and a link to the span that is current."""
    return otel_context.Context(), links_of([otel_context.get_current()])


def current() -> otel_context.Context:
    """The current context (to link to it from another task)."""
    return otel_context.get_current()


def inject(carrier: dict[str, str] | None = None) -> dict[str, str]:
    """The current trace context as W3C headers, added to `carrier` (a new dict by default)."""
    carrier = {} if carrier is None else carrier
    propagate.inject(carrier)
    return carrier


def extract(headers: Mapping[str, str]) -> otel_context.Context | None:
    """The trace context `headers` carry, or None when they carry none."""
    if "traceparent" not in headers:
        return None
    return propagate.extract(headers)


def links_of(contexts: Iterable[otel_context.Context | None]) -> list[Link]:
    """Links to the spans of `contexts` (those that carry one)."""
    links: list[Link] = []
    for context in contexts:
        if context is None:
            continue
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            links.append(Link(span_context))
    return links


def parent_and_links(
    contexts: Sequence[otel_context.Context | None],
) -> tuple[otel_context.Context | None, list[Link]]:
    """How a span over a batch relates to its items' contexts: the first item's context is its parent,
    and every item's span is linked (OTel's links for batches), so each item's own trace shows the batch."""
    first = next((context for context in contexts if context is not None), None)
    return first, links_of(contexts)


def log_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: `trace_id` and `span_id` of the current span in every line (while tracing)."""
    if enabled:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            event.setdefault("trace_id", format(span_context.trace_id, "032x"))
            event.setdefault("span_id", format(span_context.span_id, "016x"))
    return event
