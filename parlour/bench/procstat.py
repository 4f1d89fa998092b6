"""CPU time and resident memory of a process, from /proc (Linux), for the target's processes."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    pid: int
    at: float  # monotonic seconds
    cpu_seconds: float  # user + system
    rss_bytes: int


def parse_stat_cpu_seconds(stat: str, ticks_per_second: int = _TICKS) -> float:
    """utime + stime of a /proc/<pid>/stat line, in seconds (the command name may hold spaces)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def parse_status_rss_bytes(status: str) -> int:
    """VmRSS of a /proc/<pid>/status text, in bytes."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sample(pid: int) -> ProcSample:
    """The process's CPU time and RSS now."""
    root = Path("/proc") / str(pid)
    return ProcSample(
        pid=pid,
        at=time.monotonic(),
        cpu_seconds=parse_stat_cpu_seconds((root / "stat").read_text()),
        rss_bytes=parse_status_rss_bytes((root / "status").read_text()),
    )


def cpu_percent(before: ProcSample, after: ProcSample) -> float:
    """Share of one core the process used between two samples, in percent."""
    elapsed = after.at - before.at
    return 100 * (after.cpu_seconds - before.cpu_seconds) / elapsed if elapsed > 0 else 0.0


def sample_all(pids: dict[str, int]) -> dict[str, ProcSample]:
    """A sample of each named process that still runs."""
    samples = {}
    for name, pid in pids.items():
        try:
            samples[name] = sample(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return samples


def cpu_usage(before: dict[str, ProcSample], after: dict[str, ProcSample]) -> dict[str, float]:
    """CPU percent of each process sampled both times."""
    return {name: round(cpu_percent(before[name], after[name]), 1) for name in before if name in after}
