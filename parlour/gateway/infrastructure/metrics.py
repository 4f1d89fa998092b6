"""The gateway's Prometheus metrics, on the process's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class GatewayMetrics:
    """Sessions, closes by code, refusals by code, and frames handed to sessions."""

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
