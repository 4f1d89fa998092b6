"""Sampling the target's processes with py-spy during the measured window, and what dominates their time.

py-spy (the `bench` extra) attaches to a running process without changing it (`--nonblocking`: it does not
pause the target to sample). Its collapsed stacks are summarised two ways: self time per function (where the
CPU actually burns) and inclusive time (which call paths cost the most). Only samples that hold the GIL are
kept, so the shares are of the Python CPU time of the process, not of its wall time.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
SAMPLING_RATE = 200


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    parts = Path(match["file"]).parts
    start = len(parts) - 2
    for anchor, offset in (("site-packages", 1), ("parlour", 0)):
        if anchor in parts:
            start = len(parts) - 1 - parts[::-1].index(anchor) + offset
            break
    return f"{match['function']} ({'/'.join(parts[max(start, 0) :])})"


# Frames every sample of a thread shares (the event loop's run, a thread's bootstrap): cut, so the inclusive
# ranking shows the work, and a sample with nothing below them is time in the loop's own C code (uvloop).
_ROOTS = ("Runner.run (", "BaseEventLoop.run_until_complete (", "Thread.run (", "Thread._bootstrap_inner (")
LOOP_ITSELF = "(event loop itself: uvloop/libuv C code, callbacks' scheduling, socket I/O)"


def _below_the_loop(frames: list[str]) -> list[str]:
    roots = [index for index, frame in enumerate(frames) if frame.startswith(_ROOTS)]
    if not roots:
        return frames
    return frames[roots[-1] + 1 :] or [LOOP_ITSELF]


def summarise(lines: Iterable[str], top: int = 10) -> dict[str, list[tuple[str, float]]]:
    """Top functions by self and by inclusive share of the samples (percent), from collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _below_the_loop([_short(frame) for frame in stack.split(";")])
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"self": [], "inclusive": []}
    return {
        "self": [(name, round(100 * count / total, 1)) for name, count in own.most_common(top)],
        "inclusive": [(name, round(100 * count / total, 1)) for name, count in inclusive.most_common(top)],
    }


class Profiler:
    """py-spy on each named process from now until `finish` (SIGINT makes py-spy write what it has)."""

    def __init__(self, directory: Path, pids: dict[str, int]) -> None:
        beside = Path(sys.executable).parent / "py-spy"  # the environment's own, even when not on PATH
        executable = str(beside) if beside.exists() else shutil.which("py-spy")
        if executable is None:
            raise RuntimeError("--profile needs py-spy: pip install 'parlour[bench]'")
        directory.mkdir(parents=True, exist_ok=True)
        self.outputs = {name: directory / f"{name}.collapsed.txt" for name in pids}
        self.processes = [
            subprocess.Popen(  # noqa: S603 - py-spy from the same environment, our own arguments
                [
                    executable,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(SAMPLING_RATE),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--gil",  # only samples holding the GIL: where the Python CPU goes, not where it waits
                    "--output",
                    str(self.outputs[name]),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, pid in pids.items()
        ]

    def finish(self) -> dict[str, dict[str, list[tuple[str, float]]]]:
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        return {name: summarise(path.read_text().splitlines()) for name, path in self.outputs.items() if path.exists()}
