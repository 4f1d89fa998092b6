"""The message bus port and its implementations: in memory (embedded mode) and RabbitMQ (distributed)."""

from parlour.common.bus.port import (
    BatchHandler,
    BusMessage,
    DeliveryRoute,
    GapHandler,
    Handler,
    MalformedMessage,
    MessageBus,
    ParkedMessage,
    QueueDepth,
    Subscription,
    UnroutableError,
)

__all__ = [
    "BatchHandler",
    "BusMessage",
    "DeliveryRoute",
    "GapHandler",
    "Handler",
    "MalformedMessage",
    "MessageBus",
    "ParkedMessage",
    "QueueDepth",
    "Subscription",
    "UnroutableError",
]
