"""Prometheus metrics. One registry per running app, so several apps can live in one test process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    """The metrics every service exposes on `/metrics`; services register theirs on `registry`."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        self.http_requests = Counter(
            "parlour_http_requests",
            "HTTP requests served, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "parlour_http_request_duration_seconds",
            "HTTP request latency, by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.bus_published = Counter(
            "parlour_bus_published",
            "Bus messages published (commands and events; one may carry a batch), by message type.",
            ["type"],
            registry=self.registry,
        )
        self.bus_consumed = Counter(
            "parlour_bus_consumed",
            "Bus messages handed to this process's handlers, by message type.",
            ["type"],
            registry=self.registry,
        )
        # Sampled by messaging every `metrics_sample_seconds` (parlour/common/bus/instrumented.py).
        self.queue_messages = Gauge(
            "parlour_bus_queue_messages",
            "Messages waiting in a shared bus queue (command partitions, subscriptions): consumer lag.",
            ["queue"],
            registry=self.registry,
        )
        self.queue_consumers = Gauge(
            "parlour_bus_queue_consumers",
            "Consumers attached to a shared bus queue.",
            ["queue"],
            registry=self.registry,
        )
        self.parked_messages = Gauge(
            "parlour_bus_parked_messages",
            "Messages in the parking lot (dead letters): failed their retries or could not be decoded.",
            ["queue"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
