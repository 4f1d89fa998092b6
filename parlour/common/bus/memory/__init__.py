"""The in-memory message bus of embedded mode: the bus itself (bus.py) and its mailboxes and bindings (parts.py)."""

from parlour.common.bus.memory.bus import InMemoryMessageBus

__all__ = ["InMemoryMessageBus"]
