"""The layering rules, checked on the source: dependencies point inward."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "parlour"
SERVICES = sorted(p.name for p in PACKAGE.iterdir() if (p / "domain").is_dir())
# The shared kernel a domain may use: pure standard-library modules of the common package.
SHARED_KERNEL = {"parlour.common.errors", "parlour.common.clock"}
LAYERS = ["domain", "application", "adapters", "infrastructure"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(service: str, layer: str) -> list[Path]:
    return sorted((PACKAGE / service / layer).rglob("*.py"))


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_four_layers(service: str) -> None:
    assert all((PACKAGE / service / layer).is_dir() for layer in LAYERS)


@pytest.mark.parametrize("service", SERVICES)
def test_a_domain_imports_only_the_standard_library_and_the_shared_kernel(service: str) -> None:
    for path in _modules(service, "domain"):
        for name in _imports(path):
            top = name.split(".")[0]
            allowed = (
                top in sys.stdlib_module_names or name in SHARED_KERNEL or name.startswith(f"parlour.{service}.domain")
            )
            assert allowed, f"{path.relative_to(PACKAGE)} imports {name}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_application_layer_does_not_reach_outward(service: str) -> None:
    forbidden = (f"parlour.{service}.adapters", f"parlour.{service}.infrastructure", "fastapi", "sqlalchemy")
    for path in _modules(service, "application"):
        for name in _imports(path):
            assert not name.startswith(forbidden), f"{path.relative_to(PACKAGE)} imports {name}"


@pytest.mark.parametrize("service", SERVICES)
def test_services_do_not_import_each_other_except_through_the_root(service: str) -> None:
    others = tuple(f"parlour.{other}." for other in SERVICES if other != service)
    for path in sorted((PACKAGE / service).rglob("*.py")):
        for name in _imports(path):
            assert not name.startswith(others), f"{path} imports {name}"
