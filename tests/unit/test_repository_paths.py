"""Paths that must hold: the package reaches for nothing outside itself, and the docs name real files.

An installed wheel holds `parlour/` and nothing else, so code that climbs out of the package from
`__file__`, or names a module or file of the checkout (`bench.peers…`, `tests/…`), works in the repository
and fails once installed. Docs and docstrings that name a file that was moved send the reader nowhere.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "parlour"
# Folders of the checkout that an installed package does not have.
OUTSIDE = ("benchmarks", "bench", "tests", "scripts", "deploy", "docs")
SKIPPED_DIRS = {".git", ".venv", "__pycache__", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
SKIPPED_DIRS |= {".hypothesis", "build", "test-artifacts", "bench-results", "parlour-data"}

# A string constant used as a path into the checkout: `tests/x`, `docs/y.md`, `bench.peers.app:app`.
_INTO_CHECKOUT = re.compile(rf"^(?:{'|'.join(OUTSIDE)})(?:[./:]\w|/$)")
_PARENT_SEGMENT = re.compile(r"(?:^|[/\\])\.\.(?:[/\\]|$)")

# A repository path in prose: starts with a top-level folder, ends with a file extension or a slash.
TOP_FOLDERS = ("parlour", "tests", "docs", "benchmarks", "deploy", "scripts", "bench")
_TOP = "|".join(TOP_FOLDERS)
_PROSE_PATH = re.compile(rf"(?<![\w./<-])(?:{_TOP})/[\w./-]*(?:\.[A-Za-z]{{1,5}}\b|/)")
# A backticked file name: one token with a known extension (`store.js`, `adapters/http.py`).
_EXTENSIONS = "py|md|js|css|html|toml|conf|sh|mako|json|yml|yaml|ini|txt"
_TICKED_FILE = re.compile(rf"`([\w./-]+\.(?:{_EXTENSIONS}))`")
_MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
# A page named bare in prose: `DESIGN.md`, logging.md.
_PROSE_PAGE = re.compile(r"(?<![\w./-])[\w-]+\.md\b")


def _skipped(folder: str) -> bool:
    return folder in SKIPPED_DIRS or folder.endswith(".egg-info")


def _walk(top: Path) -> Iterator[Path]:
    """Every file and folder below `top`, leaving out caches, virtual environments and build output."""
    for folder, subfolders, files in os.walk(top):
        subfolders[:] = sorted(name for name in subfolders if not _skipped(name))
        yield from (Path(folder, name) for name in subfolders)
        yield from (Path(folder, name) for name in sorted(files))


def _files(top: Path, suffix: str) -> list[Path]:
    return sorted(path for path in _walk(top) if path.name.endswith(suffix) and path.is_file())


@functools.cache
def _repository() -> tuple[frozenset[str], frozenset[str]]:
    """Every file and folder of the checkout (relative, '/'-separated; folders end in '/') and every name."""
    paths: set[str] = set()
    names: set[str] = set()
    for path in _walk(ROOT):
        relative = path.relative_to(ROOT).as_posix()
        paths.add(relative + "/" if path.is_dir() else relative)
        names.add(path.name)
    return frozenset(paths), frozenset(names)


# -- the package stays inside itself ------------------------------------------------------------------


def _method(node: ast.expr, names: set[str]) -> ast.expr | None:
    """The receiver of `receiver.<one of names>(…)`, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names:
        return node.func.value
    return None


def _climbs(node: ast.expr) -> int | None:
    """How many folders `node` climbs from `__file__` (`Path(__file__).resolve().parents[1]` is 2)."""
    climbs = 0
    while True:
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            climbs, node = climbs + 1, node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
            index = node.slice.value if isinstance(node.slice, ast.Constant) else None
            climbs, node = climbs + (index + 1 if isinstance(index, int) else 99), node.value.value
        elif (receiver := _method(node, {"resolve", "absolute"})) is not None:
            node = receiver
        elif _method(node, {"dirname"}) is not None and isinstance(node, ast.Call):
            climbs, node = climbs + 1, node.args[0]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Path" and node.args:
            node = node.args[0]
        elif isinstance(node, ast.Name) and node.id == "__file__":
            return climbs
        else:
            return None


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring constants of a module, its classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def escapes(source: str, depth: int) -> list[str]:
    """What the module `source`, `depth` levels down in parlour/, names outside the package."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr):
            continue
        climbs = _climbs(node)
        if climbs is not None and climbs > depth:
            found.append(f"line {node.lineno}: climbs {climbs} folders from __file__, out of parlour/")
        text = node.value if isinstance(node, ast.Constant) and id(node) not in docstrings else None
        if isinstance(text, str) and (_PARENT_SEGMENT.search(text) or _INTO_CHECKOUT.match(text)):
            found.append(f"line {node.lineno}: {text!r} names a place outside the package")
    return found


@pytest.mark.parametrize("path", list(_files(PACKAGE, ".py")), ids=lambda path: str(path.relative_to(ROOT)))
def test_package_code_reaches_for_no_path_outside_the_package(path: Path) -> None:
    # parlour/common/db.py is 2 deep: it may climb 2 folders (to parlour/) and no more.
    assert escapes(path.read_text(), len(path.relative_to(PACKAGE).parts)) == []


@pytest.mark.parametrize(
    ("source", "depth"),
    [
        ("ROOT = Path(__file__).resolve().parents[2]", 2),
        ("ROOT = Path(__file__).parent.parent.parent", 2),
        ("HERE = os.path.dirname(os.path.dirname(__file__))", 1),
        ('APP = "bench.peers.fastapi_broadcast:app"', 2),
        ('FIXTURE = Path("tests/data/frames.json")', 2),
        ('STATIC = BASE / ".." / "static"', 2),
        ('subprocess.run(["python", "-m", "benchmarks.ws_connects"])', 1),
    ],
)
def test_the_escape_check_sees_each_way_out(source: str, depth: int) -> None:
    assert escapes(source, depth), source


def test_climbing_to_the_package_root_and_naming_the_checkout_in_a_docstring_are_allowed() -> None:
    source = '"""Tested by tests/unit/ (docs/architecture.md)."""\nROOT = Path(__file__).resolve().parent.parent\n'
    assert escapes(source, 2) == []


# -- the docs name files that exist ---------------------------------------------------------------------


def _doc_texts() -> Iterator[tuple[Path, str]]:
    """README.md, every page under docs/, and every docstring of the Python code, with their files."""
    yield ROOT / "README.md", (ROOT / "README.md").read_text()
    for page in _files(ROOT / "docs", ".md"):
        yield page, page.read_text()
    for top in ("parlour", "tests", "benchmarks"):
        for module in _files(ROOT / top, ".py"):
            tree = ast.parse(module.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                    docstring = ast.get_docstring(node, clean=False)
                    if docstring:
                        yield module, docstring


def _exists(named: str, beside: Path, paths: frozenset[str], names: frozenset[str]) -> bool:
    """Whether `named` is a file of the checkout: from its root, from `beside`, or as the tail of a path."""
    named = named.rstrip(".,;:")
    if (named.split("/")[0].isupper() and "/" in named) or named.startswith(("/", "~", "<")):
        return True  # not a repository path: `PARLOUR_AUTH_URL/auth/…`, `/etc/…`, `<data dir>/keys/`
    if "/" not in named.rstrip("/"):
        return named.rstrip("/") in names or named in paths
    from_beside = (beside / named).resolve()
    if from_beside.is_relative_to(ROOT) and from_beside.exists():
        return True
    tail = named.removeprefix("./")
    if tail.split("/")[0] in TOP_FOLDERS:
        return tail in paths  # from the root, as written
    return any(path.endswith("/" + tail) for path in paths)  # `adapters/http.py` in a service's page


def missing_names(text: str, beside: Path, paths: frozenset[str], names: frozenset[str]) -> list[str]:
    """The file names in `text` (links, backticked files, repository paths) that name no file."""
    named = [target.split("#")[0] for target in _MD_LINK.findall(text)]
    named = [target for target in named if target and not re.match(r"^[a-z]+:", target)]
    named += _TICKED_FILE.findall(text)
    named += _PROSE_PATH.findall(text)
    named += _PROSE_PAGE.findall(text)
    return sorted({name for name in named if not _exists(name, beside, paths, names)})


def test_docs_and_docstrings_name_only_files_that_exist() -> None:
    paths, names = _repository()
    broken = {
        f"{where.relative_to(ROOT)}: {name}"
        for where, text in _doc_texts()
        for name in missing_names(text, where.parent, paths, names)
    }
    assert sorted(broken) == []


@pytest.mark.parametrize(
    "text",
    [
        "See [the flow](flows/nowhere.md).",
        "Code: `parlour/common/bus/amqp_consumer.py`.",
        "The peers are in bench/peers/fastapi_broadcast.py.",
        "Kept in `memory_parts.py`.",
        'The contract is DESIGN.md, "Message flow".',
        "Under parlour/common/nowhere/.",
    ],
)
def test_the_docs_check_sees_a_name_that_points_nowhere(text: str) -> None:
    paths, names = _repository()
    assert missing_names(text, ROOT / "docs", paths, names), text


def test_the_docs_check_accepts_names_from_the_root_beside_the_page_and_by_their_tail() -> None:
    paths, names = _repository()
    text = "[ops](operations.md), `parlour/common/bus/port.py`, `adapters/websocket.py`, `store.js`, docs/flows/"
    assert missing_names(text, ROOT / "docs", paths, names) == []
