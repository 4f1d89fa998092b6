"""The key-value port and its implementations: in memory (embedded mode) and Redis (distributed mode)."""

from parlour.common.kv.port import Counter, KeyValueStore

__all__ = ["Counter", "KeyValueStore"]
