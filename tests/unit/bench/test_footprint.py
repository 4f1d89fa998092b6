"""The soak's figures from its samples: RSS growth after warm-up, descriptor and queue drift."""

from __future__ import annotations

import os

from parlour.bench.footprint import Sample, drift, process_footprint


def _sample(at: float, rss: float, fds: int, queues: int) -> Sample:
    return Sample(at=at, rss_mib={"gateway-0": rss}, fds={"gateway-0": fds}, queues=queues, bindings=queues)


def test_growth_counts_from_the_end_of_the_warm_up_with_medians_of_three() -> None:
    samples = [_sample(0, 50, 20, 30), _sample(10, 100, 40, 31)]  # warm-up: not counted
    samples += [_sample(20 + 10 * i, rss, 40, 31) for i, rss in enumerate([100, 101, 100, 102, 104, 103])]
    figures = drift(samples, warmup=20)
    assert figures["gateway-0_rss_growth_pct"] == 3.0  # median 100 -> median 103
    assert figures["gateway-0_fd_drift"] == 0
    assert figures["queues_drift"] == figures["bindings_drift"] == 0


def test_a_sample_the_broker_could_not_answer_does_not_count_as_drift() -> None:
    samples = [_sample(at, 100, 40, queues) for at, queues in ((0, 31), (10, -1), (20, 31), (30, -1))]
    assert drift(samples, warmup=0)["queues_drift"] == 0
    samples.append(_sample(40, 100, 45, 33))
    figures = drift(samples, warmup=0)
    assert figures["queues_drift"] == 2
    assert figures["gateway-0_fd_drift"] == 0  # medians: one odd sample is not a trend


def test_a_process_footprint_is_read_from_proc_and_none_once_it_is_gone() -> None:
    mine = process_footprint(os.getpid())
    assert mine is not None
    rss, fds = mine
    assert rss > 1
    assert fds >= 3
    assert process_footprint(2**22 + 12345) is None
