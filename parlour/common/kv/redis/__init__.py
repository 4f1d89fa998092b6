"""The Redis key-value store of distributed mode (store.py)."""

from parlour.common.kv.redis.store import RedisKeyValueStore

__all__ = ["RedisKeyValueStore"]
