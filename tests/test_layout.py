"""The package layout of ``app/``: imports run one way, from ``web`` down to ``config``."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

APP = REPO_ROOT / "app"
# What each package may import besides itself: web → (accounts, ingest, processing, serving)
# → (catalog, storage) → (config, errors, refreshing_cache).
BASE = {"config", "errors", "refreshing_cache"}
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "errors": set(),
    "refreshing_cache": set(),
    "catalog": BASE,
    "storage": BASE,
    "ingest": BASE | {"catalog", "storage"},
    "processing": BASE | {"catalog", "storage"},
    "serving": BASE | {"catalog", "storage"},
    "accounts": BASE | {"catalog"},
    "web": BASE | {"accounts", "catalog", "storage", "ingest", "processing", "serving"},
    "maintenance": BASE | {"catalog", "storage"},
}


def _package_of(path: Path) -> str:
    relative = path.relative_to(APP)
    return relative.parts[0].removesuffix(".py")


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + (
                [f"{node.module}.{alias.name}" for alias in node.names]
                if node.module == "app"
                else []
            )
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "app" and len(parts) > 1 and parts[1] != "__version__":
                found.add(parts[1])
    return found


MODULES = sorted(p for p in APP.rglob("*.py") if _package_of(p) in ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(APP)))
def test_imports_run_one_way(path: Path) -> None:
    package = _package_of(path)
    wrong = _imported_packages(path) - ALLOWED[package] - {package}
    assert not wrong, f"{path.relative_to(REPO_ROOT)} ({package}) imports {sorted(wrong)}"


def test_every_package_says_what_it_owns() -> None:
    for init in APP.glob("*/__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), init
