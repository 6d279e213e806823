"""Every name the benchmark scripts import from the package exists.

Benchmarks import inside functions and no test runs them, so a renamed or moved package name
breaks them silently until someone measures (issue 27's redesign moved many); this reads their
imports with ``ast`` and resolves each one, without running a benchmark."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted([*REPO.glob("benchmarks/*.py"), *REPO.glob("scripts/*.py")])


def package_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) for every ``emoforge`` import in ``path``, at any depth."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "emoforge":
            found += [(node.lineno, node.module, a.name) for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "emoforge"]
    return found


def resolves(module: str, name: str | None) -> bool:
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return False
    if name is None or hasattr(imported, name):
        return True
    try:  # ``from package import submodule``
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_package_name_a_script_imports_exists(script: Path) -> None:
    missing = [
        f"{script.name}:{line} {module}.{name}"
        for line, module, name in package_imports(script)
        if not resolves(module, name)
    ]
    assert not missing


def test_a_missing_name_is_caught(tmp_path: Path) -> None:
    script = tmp_path / "bench_x.py"
    script.write_text(
        "def f():\n    from emoforge.agents.jury import recognizer\n    from emoforge.storage.records import Segment\n"
    )
    found = package_imports(script)
    assert [(m, n) for _, m, n in found] == [
        ("emoforge.agents.jury", "recognizer"),
        ("emoforge.storage.records", "Segment"),
    ]
    assert [resolves(m, n) for _, m, n in found] == [False, True]
