"""The few server frames the gateway writes itself (every other one comes from messaging, already encoded).

They are rare (once per connection, per ping, per bad frame), so the standard library's `json` is enough.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from parlour.gateway.domain.protocol import BATCH, ERROR, HELLO, PING, PONG, ErrorCode

PING_FRAME = b'{"type":"' + PING.encode() + b'"}'
PONG_FRAME = b'{"type":"' + PONG.encode() + b'"}'
_BATCH_OPEN = b'{"type":"' + BATCH.encode() + b'","frames":['
_BATCH_CLOSE = b"]}"


def _encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode()


def hello_frame(
    session_id: str, user_id: str, *, ping_interval: float, ping_timeout: float, max_frame_bytes: int
) -> bytes:
    """The first frame of every session: who you are here and the limits that apply."""
    return _encode(
        {
            "type": HELLO,
            "session_id": session_id,
            "user_id": user_id,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "max_frame_bytes": max_frame_bytes,
        }
    )


def pong_frame(ping_id: str | int | None) -> bytes:
    """The answer to a client's `ping`, echoing its `id`."""
    return PONG_FRAME if ping_id is None else _encode({"type": PONG, "id": ping_id})


def error_frame(
    code: ErrorCode, reason: str, *, client_id: str | None = None, retry_after: float | None = None
) -> bytes:
    """An `error` frame about one client frame."""
    frame: dict[str, Any] = {"type": ERROR, "code": code.value, "reason": reason}
    if client_id is not None:
        frame["client_id"] = client_id
    if retry_after is not None:
        frame["retry_after"] = round(retry_after, 3)
    return _encode(frame)


def batch_frame(frames: Sequence[bytes]) -> bytes:
    """Several frames as one `batch` frame, in order. Frames are JSON objects already: no re-encoding."""
    return _BATCH_OPEN + b",".join(frames) + _BATCH_CLOSE


def batched(frames: Sequence[bytes], max_bytes: int) -> list[bytes]:
    """`frames` grouped into as few writes as possible: lone frames as they are, runs as `batch` frames.

    No batch grows past `max_bytes` (a single larger frame still goes, alone).
    """
    writes: list[bytes] = []
    run: list[bytes] = []
    size = 0
    for frame in frames:
        if run and size + len(frame) + 1 > max_bytes:
            writes.append(run[0] if len(run) == 1 else batch_frame(run))
            run, size = [], 0
        run.append(frame)
        size += len(frame) + 1
    if run:
        writes.append(run[0] if len(run) == 1 else batch_frame(run))
    return writes
