"""Parlour as a user gets it: the wheel built from this tree, installed in a fresh virtual environment.

Run from the repository, Python finds files the wheel does not hold (the working directory is on the path,
an editable install maps the tree); installed, it finds only what the wheel holds. So the venv is made
empty, the wheel installed into it with pip, and the commands run from a folder outside the tree. The
dependencies are the test environment's, reached through a `.pth` line (no download, no editable-install
hook: a plain path is appended after the venv's own site-packages), so only Parlour comes from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, f"{argv} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin` folder of a fresh venv holding the wheel of this tree (built from a copy of it)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT / "parlour", source / "parlour", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(base / "dist"), "."], source)
    (wheel,) = (base / "dist").glob("parlour-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)], base)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", purelib], base).stdout.strip())
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_the_installed_package_is_the_wheel_not_the_tree(installed: Path, tmp_path: Path) -> None:
    where = _run([str(installed / "python"), "-c", "import parlour; print(parlour.__file__)"], tmp_path).stdout
    assert Path(where.strip()).is_relative_to(installed.parent)


def test_bench_fanout_on_the_fastapi_peer_runs_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    bench = [str(installed / "parlour"), "bench", "fanout", "--topology", "fastapi-peer", "--no-progress"]
    sizes = ["--members", "3", "--rate", "50", "--duration", "1", "--out", str(out)]
    done = _run([*bench, *sizes], tmp_path)
    assert "PASSED" in done.stdout
    result = json.loads(out.read_text())
    assert result["target"] == "fastapi-peer"
    assert result["correctness"]["delivered"] == result["correctness"]["acked"] * 2 > 0
