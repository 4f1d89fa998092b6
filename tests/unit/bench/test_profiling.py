"""What dominates a profile: self and inclusive shares from py-spy's collapsed stacks."""

from __future__ import annotations

from parlour.bench.profiling import LOOP_ITSELF, summarise

STACKS = [
    "<module> (app.py:1);serve (/x/site-packages/uvicorn/server.py:10);send (/x/site-packages/websockets/a.py:5) 60",
    "<module> (app.py:1);serve (/x/site-packages/uvicorn/server.py:10);encode (/x/parlour/gateway/codec.py:7) 30",
    "<module> (app.py:1);idle (app.py:3) 10",
    "garbage without a count",
]


def test_self_time_is_counted_at_the_leaf_in_percent() -> None:
    summary = summarise(STACKS)
    assert summary["self"][0] == ("send (websockets/a.py)", 60.0)
    assert ("encode (parlour/gateway/codec.py)", 30.0) in summary["self"]


def test_inclusive_time_counts_every_frame_once_per_stack() -> None:
    summary = summarise(STACKS)
    assert summary["inclusive"][0] == ("<module> (app.py)", 100.0)
    assert ("serve (uvicorn/server.py)", 90.0) in summary["inclusive"]


def test_an_empty_profile_has_no_rows() -> None:
    assert summarise([]) == {"self": [], "inclusive": []}


def test_frames_above_the_event_loop_are_cut_and_time_in_the_loop_itself_is_named() -> None:
    stacks = [
        "main (cli.py:1);Runner.run (/x/asyncio/runners.py:118) 40",
        "main (cli.py:1);Runner.run (/x/asyncio/runners.py:118);deliver (/x/parlour/gateway/hub.py:9) 60",
    ]
    summary = summarise(stacks)
    assert summary["self"][0] == ("deliver (parlour/gateway/hub.py)", 60.0)
    assert summary["self"][1] == (LOOP_ITSELF, 40.0)
    assert "main (cli.py)" not in dict(summary["inclusive"])
