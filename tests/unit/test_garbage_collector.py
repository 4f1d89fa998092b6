"""The server process tunes the garbage collector before serving (parlour/common/http/server.py)."""

from __future__ import annotations

import subprocess
import sys

from parlour.common.http.server import GC_YOUNG_THRESHOLD


def test_start_up_objects_are_frozen_and_the_young_generation_waits_longer() -> None:
    # In a child process: freezing this test process's objects would outlive the test.
    script = (
        "import gc; from parlour.common.http.server import tune_garbage_collector; "
        "before = gc.get_threshold(); tune_garbage_collector(); after = gc.get_threshold(); "
        "print(gc.get_freeze_count() > 0, after[0], after[1:] == before[1:])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", str(GC_YOUNG_THRESHOLD), "True"]
