"""The in-memory key-value store of embedded mode (store.py)."""

from parlour.common.kv.memory.store import InMemoryKeyValueStore

__all__ = ["InMemoryKeyValueStore"]
