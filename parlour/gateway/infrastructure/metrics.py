"""The gateway's Prometheus metrics, on the process's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Commit to socket write: a few milliseconds on one machine, seconds when a relay catches up.
_DELIVERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """Sessions, closes by code, refusals by code, frames handed to sessions, and how long after its
    commit a delivery reached the sockets."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sessions = Gauge("parlour_gateway_sessions", "Live WebSocket sessions on this gateway.", registry=registry)
        self.closed = Counter(
            "parlour_gateway_sessions_closed", "Closed WebSocket sessions, by close code.", ["code"], registry=registry
        )
        self.refused = Counter(
            "parlour_gateway_refused", "WebSocket handshakes refused, by close code.", ["code"], registry=registry
        )
        self.delivered = Counter(
            "parlour_gateway_frames_delivered", "Frames handed to local sessions.", registry=registry
        )
        self.delivery_latency = Histogram(
            "parlour_gateway_delivery_latency_seconds",
            "From messaging's commit (its publication) to the write to local sockets, per delivery batch.",
            buckets=_DELIVERY_BUCKETS,
            registry=registry,
        )
