"""The coordinator's side of the worker processes: start them, talk to them, watch their counters."""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from parlour.bench.worker import COUNTERS, WorkerPlan, worker_main

Totals = dict[str, int]


class WorkerError(RuntimeError):
    """A worker process failed a command; the message carries its traceback."""


class WorkerPool:
    """N client processes (spawned, so each has its own interpreter and event loop)."""

    def __init__(self, plans: Sequence[WorkerPlan], progress: Progress) -> None:
        context = multiprocessing.get_context("spawn")
        self.progress = progress
        self.counters: Any = context.RawArray("q", len(plans) * len(COUNTERS))
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for plan in plans:
            ours, theirs = context.Pipe()
            process = context.Process(target=worker_main, args=(plan, theirs, self.counters), daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    def __len__(self) -> int:
        return len(self.pipes)

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def call(self, command: str, arguments: Sequence[Any] | None = None, *, timeout: float = 600) -> list[Any]:
        """Send `command` to every worker (with its own argument) and wait for every answer."""
        args = list(arguments) if arguments is not None else [None] * len(self.pipes)
        for pipe, argument in zip(self.pipes, args, strict=True):
            pipe.send((command, argument))
        results: list[Any] = [None] * len(self.pipes)
        waiting = set(range(len(self.pipes)))
        deadline = time.monotonic() + timeout
        while waiting:
            if time.monotonic() > deadline:
                raise WorkerError(f"workers {sorted(waiting)} did not answer {command!r} within {timeout:.0f} s")
            for slot in list(waiting):
                pipe = self.pipes[slot]
                if pipe.poll(0.02):
                    kind, result = pipe.recv()
                    if kind == "error":
                        raise WorkerError(f"worker {slot} failed {command!r}:\n{result}")
                    results[slot] = result
                    waiting.discard(slot)
                elif not self.processes[slot].is_alive():
                    raise WorkerError(f"worker {slot} died (exit code {self.processes[slot].exitcode})")
            self.progress.tick(self.totals())
        return results

    def totals(self) -> Totals:
        """Every counter summed over the workers."""
        width = len(COUNTERS)
        values = self.counters[:]
        return {name: sum(values[index::width]) for index, name in enumerate(COUNTERS)}

    def wait_until(self, done: Callable[[Totals], bool], *, timeout: float, stall: float | None = None) -> bool:
        """Watch the counters until `done` (True), `timeout` or `stall` seconds without any change (False)."""
        deadline = time.monotonic() + timeout
        last, changed = self.totals(), time.monotonic()
        while True:
            totals = self.totals()
            self.progress.tick(totals)
            if done(totals):
                return True
            now = time.monotonic()
            if totals != last:
                last, changed = totals, now
            if now > deadline or (stall is not None and now - changed > stall):
                return False
            time.sleep(0.01)  # polling a counter, not synchronising: `done` decides

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("exit", None))
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self.pipes:
            pipe.close()


class Progress:
    """A live line on stderr: the phase, elapsed time, counters and the delivery rate."""

    def __init__(self, scenario: str, *, enabled: bool = True) -> None:
        self.scenario = scenario
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.phase = "starting"
        self.phase_started = time.monotonic()
        self._printed = 0.0
        self._rate_mark = (time.monotonic(), 0)
        self._rate = 0.0
        self.timings: list[tuple[str, float]] = []  # (phase, seconds) of every phase that ended

    def enter(self, phase: str) -> None:
        now = time.monotonic()
        self.timings.append((self.phase, round(now - self.phase_started, 3)))
        self.phase = phase
        self.phase_started = now
        if self.enabled:
            self._emit(f"[{self.scenario}] {phase} …", final=True)

    def tick(self, totals: Totals) -> None:
        now = time.monotonic()
        interval = 0.5 if self.tty else 5.0
        if not self.enabled or now - self._printed < interval:
            return
        mark_time, mark_count = self._rate_mark
        if now - mark_time >= 0.5:
            self._rate = (totals["received"] - mark_count) / (now - mark_time)
            self._rate_mark = (now, totals["received"])
        self._printed = now
        line = (
            f"[{self.scenario}] {self.phase} {now - self.phase_started:5.1f}s  live {totals['ready']:,}  "
            f"sent {totals['sent']:,}  acked {totals['acked']:,}  received {totals['received']:,} "
            f"({self._rate:,.0f}/s)"
        )
        if totals["presence"]:
            line += f"  presence frames {totals['presence']:,}"
        if totals["watched_online"]:
            line += f" (the observer is shown {totals['watched_online']:,} online)"
        bad = {key: totals[key] for key in ("rejected", "errors", "disconnects") if totals[key]}
        if bad:
            line += "  " + " ".join(f"{key} {value:,}" for key, value in bad.items())
        self._emit(line, final=not self.tty)

    def _emit(self, line: str, *, final: bool) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
