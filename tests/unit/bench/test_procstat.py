"""Reading a process's CPU time and memory from /proc."""

from __future__ import annotations

import os

import pytest

from parlour.bench.procstat import ProcSample, cpu_percent, parse_stat_cpu_seconds, parse_status_rss_bytes, sample

STAT = "4242 (uvicorn worker) S 1 4242 4242 0 -1 4194560 9000 0 3 0 250 50 0 0 20 0 3 0 100 1000 200"


def test_cpu_seconds_are_user_plus_system_ticks_even_when_the_name_has_spaces() -> None:
    assert parse_stat_cpu_seconds(STAT, ticks_per_second=100) == 3.0


def test_rss_comes_from_vmrss_in_kibibytes() -> None:
    assert parse_status_rss_bytes("Name:\tx\nVmRSS:\t  2048 kB\nThreads: 3\n") == 2 * 2**20
    assert parse_status_rss_bytes("Name:\tkernel thread\n") == 0


def test_cpu_percent_is_a_share_of_one_core() -> None:
    before = ProcSample(1, at=10.0, cpu_seconds=1.0, rss_bytes=0)
    after = ProcSample(1, at=12.0, cpu_seconds=2.5, rss_bytes=0)
    assert cpu_percent(before, after) == pytest.approx(75.0)
    assert cpu_percent(before, before) == 0.0


def test_this_process_can_be_sampled() -> None:
    now = sample(os.getpid())
    assert now.rss_bytes > 0
    assert now.cpu_seconds > 0
