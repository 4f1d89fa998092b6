"""Latency percentiles: the exact nearest-rank definition, and the histogram that approximates it."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlour.bench.stats import LatencyHistogram, percentile


def test_nearest_rank_percentiles_of_one_to_a_hundred() -> None:
    samples = [float(value) for value in range(100, 0, -1)]
    assert percentile(samples, 50) == 50
    assert percentile(samples, 95) == 95
    assert percentile(samples, 99) == 99
    assert percentile(samples, 100) == 100


def test_a_percentile_of_one_sample_is_that_sample() -> None:
    assert percentile([0.25], 1) == 0.25
    assert percentile([0.25], 99) == 0.25


def test_a_percentile_of_nothing_is_not_a_number() -> None:
    assert math.isnan(percentile([], 50))
    assert math.isnan(LatencyHistogram().percentile(50))


@pytest.mark.parametrize("p", [0, -1, 101])
def test_a_percentile_outside_zero_to_a_hundred_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], p)
    with pytest.raises(ValueError, match="percentile"):
        LatencyHistogram.of([1.0]).percentile(p)


@given(st.lists(st.floats(min_value=1e-6, max_value=30.0), min_size=1, max_size=300), st.sampled_from([50, 95, 99]))
def test_the_histogram_is_within_half_a_percent_of_the_exact_percentile(samples: list[float], p: float) -> None:
    exact = percentile(samples, p)
    approximate = LatencyHistogram.of(samples).percentile(p)
    assert approximate == pytest.approx(exact, rel=0.005, abs=1e-6)


def test_max_min_count_and_mean_are_exact() -> None:
    histogram = LatencyHistogram.of([0.001, 0.002, 0.003, 0.5])
    assert histogram.count == 4
    assert histogram.maximum == 0.5
    assert histogram.minimum == 0.001
    assert histogram.mean == pytest.approx(0.1265)


def test_merged_histograms_equal_one_histogram_of_all_samples() -> None:
    rng = random.Random(7)
    samples = [rng.expovariate(200) for _ in range(5000)]
    whole = LatencyHistogram.of(samples)
    merged = LatencyHistogram()
    for start in range(0, 5000, 1250):
        merged.merge(LatencyHistogram.of(samples[start : start + 1250]))
    assert merged.counts == whole.counts
    assert merged.count == whole.count
    assert merged.maximum == whole.maximum
    for p in (50, 95, 99):
        assert merged.percentile(p) == whole.percentile(p)


def test_the_summary_is_in_milliseconds() -> None:
    summary = LatencyHistogram.of([0.010] * 99 + [0.100]).summary_ms()
    assert summary["count"] == 100
    assert summary["p50"] == pytest.approx(10, rel=0.005)
    assert summary["p99"] == pytest.approx(10, rel=0.005)
    assert summary["max"] == 100
