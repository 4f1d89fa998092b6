"""Hold and release during resume: no loss, no duplicates, whatever the interleaving."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from parlour.gateway.domain.protocol import FrameInfo
from parlour.gateway.domain.resume import Admission, ResumeGate


def new(chat: str, seq: int) -> tuple[bytes, FrameInfo]:
    return json.dumps({"chat_id": chat, "seq": seq}).encode(), FrameInfo("message.new", chat, seq)


def test_no_resume_means_every_frame_is_sent() -> None:
    gate = ResumeGate(limit=2)
    assert not gate.needs_info
    assert gate.admit(*new("c", 1)) is Admission.SEND
    assert gate.admit(b"{}", None) is Admission.SEND


def test_held_frames_are_released_in_arrival_order_minus_the_included() -> None:
    gate = ResumeGate(limit=10)
    assert gate.begin(now=0.0)
    for chat, seq in [("a", 3), ("b", 1), ("a", 4), ("a", 5)]:
        assert gate.admit(*new(chat, seq)) is Admission.HELD
    released = [json.loads(frame) for frame in gate.complete({"a": 4})]
    assert released == [{"chat_id": "b", "seq": 1}, {"chat_id": "a", "seq": 5}]


def test_the_hold_buffer_is_bounded() -> None:
    gate = ResumeGate(limit=1)
    gate.begin(now=0.0)
    assert gate.admit(*new("a", 1)) is Admission.HELD
    assert gate.admit(*new("a", 2)) is Admission.OVERFLOW


def test_non_message_frames_pass_during_resume() -> None:
    gate = ResumeGate(limit=1)
    gate.begin(now=0.0)
    assert gate.admit(b"{}", FrameInfo("typing", "a")) is Admission.SEND
    assert gate.admit(b"{}", FrameInfo("presence")) is Admission.SEND


def test_a_new_resume_raises_the_watermark_but_never_lowers_it() -> None:
    gate = ResumeGate(limit=5)
    gate.begin(now=0.0)
    gate.complete({"a": 9})
    gate.begin(now=1.0)
    gate.complete({"a": 3})
    assert gate.admit(*new("a", 9)) is Admission.DUPLICATE
    assert gate.admit(*new("a", 10)) is Admission.SEND


@given(
    last_seq=st.integers(min_value=0, max_value=30),
    missed=st.integers(min_value=0, max_value=30),
    live=st.integers(min_value=0, max_value=30),
    answer_at=st.integers(min_value=0, max_value=60),
)
def test_resume_yields_every_message_once_in_order(last_seq: int, missed: int, live: int, answer_at: int) -> None:
    """The client had `last_seq`; `missed` more were committed before the sync snapshot, `live` after.

    Live copies of all of them arrive around the answer: those before the snapshot may arrive late (after
    `resume.done`); the client must end with last_seq+1 .. last_seq+missed+live, each once, in order.
    """
    included = last_seq + missed
    answer = [last_seq + i for i in range(1, missed + 1)]
    live_copies = [last_seq + i for i in range(1, missed + live + 1)]  # every commit is published live too
    split = min(answer_at, len(live_copies))
    gate = ResumeGate(limit=1_000)
    gate.begin(now=0.0)
    received: list[int] = []
    for seq in live_copies[:split]:
        if gate.admit(*new("a", seq)) is Admission.SEND:
            received.append(seq)
    received.extend(answer)
    received.extend(json.loads(frame)["seq"] for frame in gate.complete({"a": included}))
    for seq in live_copies[split:]:
        if gate.admit(*new("a", seq)) is Admission.SEND:
            received.append(seq)
    expected = list(range(last_seq + 1, last_seq + missed + live + 1))
    assert sorted(received) == expected
    assert len(received) == len(set(received))
    assert received == expected  # live copies come in seq order, so the whole stream does
