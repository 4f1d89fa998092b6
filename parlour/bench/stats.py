"""Latency statistics: exact percentiles of a sample, and a mergeable histogram for millions of samples.

Worker processes record into a `LatencyHistogram` (constant memory, ~0.5 % relative precision) and the
coordinator merges them; `percentile` is the exact nearest-rank definition both agree with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

PERCENTILES = (50.0, 95.0, 99.0)


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank `p`-th percentile (0 < p <= 100) of `samples`; NaN when there are none."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


class LatencyHistogram:
    """Counts of latencies (seconds) in logarithmic buckets; mergeable across processes.

    A bucket spans a factor of e^(1/RESOLUTION) of the value in microseconds, so a reported percentile is
    within 0.5 % of the exact one; `max` and `min` are exact.
    """

    RESOLUTION = 200

    __slots__ = ("count", "counts", "maximum", "minimum", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.maximum = 0.0
        self.minimum = math.inf

    def record(self, seconds: float) -> None:
        """Add one latency."""
        seconds = max(seconds, 0.0)
        key = int(math.log1p(seconds * 1e6) * self.RESOLUTION)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.count += 1
        self.total += seconds
        self.maximum = max(self.maximum, seconds)
        self.minimum = min(self.minimum, seconds)

    def record_many(self, samples: Iterable[float]) -> None:
        for seconds in samples:
            self.record(seconds)

    def merge(self, other: LatencyHistogram) -> None:
        """Add every count of `other` to this one."""
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        self.count += other.count
        self.total += other.total
        self.maximum = max(self.maximum, other.maximum)
        self.minimum = min(self.minimum, other.minimum)

    def percentile(self, p: float) -> float:
        """The nearest-rank `p`-th percentile in seconds (bucket midpoint, clamped to min/max); NaN if empty."""
        if not 0 < p <= 100:
            raise ValueError(f"percentile must be in (0, 100], not {p}")
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                value = math.expm1((key + 0.5) / self.RESOLUTION) / 1e6
                return min(max(value, self.minimum), self.maximum)
        return self.maximum

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def summary_ms(self) -> dict[str, float]:
        """count, p50, p95, p99, max and mean, the latencies in milliseconds."""
        summary: dict[str, float] = {"count": float(self.count)}
        for p in PERCENTILES:
            summary[f"p{p:g}"] = _ms(self.percentile(p))
        summary["max"] = _ms(self.maximum if self.count else math.nan)
        summary["mean"] = _ms(self.mean)
        return summary

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "count": self.count, "total": self.total, "max": self.maximum}

    @classmethod
    def of(cls, samples: Iterable[float]) -> LatencyHistogram:
        histogram = cls()
        histogram.record_many(samples)
        return histogram


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3) if not math.isnan(seconds) else math.nan
