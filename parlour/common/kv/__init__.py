"""The key-value port and its implementations: in memory (embedded mode) and Redis (distributed mode)."""

from parlour.common.kv.port import (
    AddMember,
    Counter,
    DeleteKey,
    KeyValueStore,
    PutField,
    RemoveMember,
    SetValue,
    Write,
)

__all__ = ["AddMember", "Counter", "DeleteKey", "KeyValueStore", "PutField", "RemoveMember", "SetValue", "Write"]
