"""The package's import graph has no cycles, and no import points up the layers.

Layers, bottom to top: ``configs`` (plain settings, imported by everything), ``storage``
(records, schema, shards, inputs), ``preprocess``, ``emoforge.quality`` (consensus,
aggregation, agreement, calibration: votes in, labels out, no annotator code), ``agents``,
``flows``, and ``emoforge`` itself (``cli``, ``commands``, ``release``, ``review``). A module
may import its own layer or a lower one. Cycles count only module-level imports: an import
under ``if TYPE_CHECKING:`` never runs, and an import inside a function runs after every
module is loaded, which is how heavy or optional libraries are reached. Upward imports count wherever they sit.

The graph is read from the source with ``ast``, so the test needs no optional dependency
and does not execute the package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Folder in the repo -> its package once installed (pyproject's [tool.setuptools.package-dir]).
PACKAGE_DIRS = {
    "emoforge": "emoforge",
    "configs": "emoforge.configs",
    "storage": "emoforge.storage",
    "preprocess": "emoforge.preprocess",
    "agents": "emoforge.agents",
    "flows": "emoforge.flows",
}
LAYERS = {
    "emoforge.configs": 0,  # (the bare "emoforge" package, its __init__, is layer 0 too: below)
    "emoforge.storage": 1,
    "emoforge.preprocess": 2,
    "emoforge.quality": 3,
    "emoforge.agents": 4,
    "emoforge.flows": 5,
    # The top: emoforge/__init__.py, cli.py, commands/, samples.py, and release/ and review/
    # (release and Label Studio review read the corpus and the agreement statistics).
    "emoforge": 6,
    "emoforge.release": 6,
    "emoforge.review": 6,
}

# Upward imports that exist: (importer, imported). Unlike cycles, these count imports inside
# functions too: a lazy import still makes the lower layer depend on the upper one. Empty
# since release and review left storage/ (issue 15); a new entry needs a reason, as it ties a
# lower layer to all above it.
ALLOWED_UPWARD: frozenset[tuple[str, str]] = frozenset()


def module_name(path: Path, repo: Path = REPO) -> str:
    rel = path.relative_to(repo)
    package = PACKAGE_DIRS[rel.parts[0]]
    parts = [p for p in rel.with_suffix("").parts[1:] if p != "__init__"]
    return ".".join([package, *parts])


def package_modules(repo: Path = REPO) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder in PACKAGE_DIRS:
        for path in sorted((repo / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                out[module_name(path, repo)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(body: Iterable[ast.stmt], lazy: bool, typing: bool = False) -> Iterable[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is loaded: top level, and inside top-level if/try
    blocks (optional-dependency fallbacks), never under ``if TYPE_CHECKING:`` (unless
    ``typing``). With ``lazy``, also the imports inside functions and classes (they run
    later, but still depend)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if typing or not _is_type_checking(node.test):
                yield from _imports(node.body, lazy, typing)
            yield from _imports(node.orelse, lazy, typing)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _imports(block, lazy, typing)
        elif lazy:
            for field in ("body", "orelse", "finalbody", "handlers"):
                block = getattr(node, field, None)
                if isinstance(block, list):
                    yield from _imports([b for b in block if isinstance(b, ast.stmt)], lazy, typing)
                    for handler in block:
                        if isinstance(handler, ast.ExceptHandler):
                            yield from _imports(handler.body, lazy, typing)


def imports_of(
    source: str, name: str, is_package: bool, known: Iterable[str], lazy: bool = False, typing: bool = False
) -> set[str]:
    """Package modules that ``name`` imports (at load time, or anywhere with ``lazy``),
    resolved to the deepest module."""
    known = set(known)
    out: set[str] = set()
    for node in _imports(ast.parse(source).body, lazy, typing):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule pkg.sub when there is one.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph(repo: Path = REPO, lazy: bool = False, typing: bool = False) -> dict[str, set[str]]:
    modules = package_modules(repo)
    return {
        name: imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", modules, lazy, typing)
        for name, path in modules.items()
    }


def layer_of(module: str) -> int:
    if module == "emoforge":
        # The package's __init__ only sets environment defaults and __version__; every
        # module runs it first anyway, so importing it points nowhere.
        return 0
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def upward_imports(graph: Mapping[str, Iterable[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a)}


def check(
    graph: Mapping[str, Iterable[str]],
    allowed: frozenset[tuple[str, str]] = ALLOWED_UPWARD,
    lazy_graph: Mapping[str, Iterable[str]] | None = None,
) -> list[str]:
    """Human-readable problems: every cycle of load-time imports in ``graph``, and every
    upward import of ``lazy_graph`` (all imports; default ``graph``) not in ``allowed``."""
    problems = [f"import cycle: {' <-> '.join(c)}" for c in find_cycles(graph)]
    upward = upward_imports(graph if lazy_graph is None else lazy_graph)
    problems += [f"upward import: {a} -> {b}" for a, b in sorted(upward - allowed)]
    return problems


def test_package_has_no_cycles_and_no_new_upward_imports() -> None:
    graph = import_graph()
    assert len(graph) > 100, "the package walk found too few modules: PACKAGE_DIRS is stale"
    assert check(graph, ALLOWED_UPWARD, import_graph(lazy=True)) == []


# Cycles that only close through an import inside a function or under TYPE_CHECKING: they
# cannot fail at load time, but they still tie modules into one unit. None are allowed.
ALLOWED_DEFERRED_CYCLES: list[list[str]] = []


def test_no_new_cycle_even_through_deferred_imports() -> None:
    # agents/agreement <-> agents/review/agreement (lazy) and agents/base <-> agents/clips
    # (TYPE_CHECKING) were such cycles; their shared parts now live in quality/stats.py
    # and agents/base.py.
    cycles = find_cycles(import_graph(lazy=True, typing=True))
    assert [c for c in cycles if c not in ALLOWED_DEFERRED_CYCLES] == []


def test_allowlist_has_no_stale_entries() -> None:
    # An entry the code no longer needs must go, or it would silently allow the import back.
    assert upward_imports(import_graph(lazy=True)) >= ALLOWED_UPWARD


def test_check_catches_a_new_cycle_and_a_new_upward_import() -> None:
    healthy = {
        "emoforge.configs.agents": set(),
        "emoforge.storage.records": {"emoforge.configs.agents"},
        "emoforge.agents.base": {"emoforge.storage.records"},
        "emoforge.agents.emotions": set(),
        "emoforge.flows.tasks": {"emoforge.agents.base"},
        "emoforge.cli": {"emoforge.flows.tasks"},
    }
    assert check(healthy, frozenset()) == []

    cyclic = {**healthy, "emoforge.agents.clips": {"emoforge.agents.base"}}
    cyclic["emoforge.agents.base"] = {"emoforge.storage.records", "emoforge.agents.clips"}
    assert check(cyclic, frozenset()) == ["import cycle: emoforge.agents.base <-> emoforge.agents.clips"]

    upward = {**healthy, "emoforge.storage.records": {"emoforge.configs.agents", "emoforge.agents.emotions"}}
    assert check(upward, frozenset()) == ["upward import: emoforge.storage.records -> emoforge.agents.emotions"]
    # Allowed once listed; any other upward import still fails.
    listed = frozenset({("emoforge.storage.records", "emoforge.agents.emotions")})
    assert check(upward, listed) == []
    upward["emoforge.preprocess.asr"] = {"emoforge.agents.emotions"}
    assert check(upward, listed) == ["upward import: emoforge.preprocess.asr -> emoforge.agents.emotions"]
    # A lazy (in-function) upward import counts too; a lazy cycle does not.
    lazy = {**healthy, "emoforge.storage.records": {"emoforge.configs.agents", "emoforge.agents.base"}}
    assert check(healthy, frozenset(), lazy) == ["upward import: emoforge.storage.records -> emoforge.agents.base"]
    # The importing package's root sits below everything.
    assert check({**healthy, "emoforge.configs.agents": {"emoforge"}, "emoforge": set()}, frozenset()) == []


def test_graph_reader_skips_type_checking_and_function_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from emoforge.storage import records\n"
        "import emoforge.agents.base as base\n"
        "if TYPE_CHECKING:\n"
        "    from emoforge.flows.tasks import X\n"
        "try:\n"
        "    from emoforge.preprocess.asr import Y\n"
        "except ImportError:\n"
        "    Y = None\n"
        "def f():\n"
        "    from emoforge.emoforge_cli import Z\n"
    )
    known = {"emoforge.storage.records", "emoforge.agents.base", "emoforge.flows.tasks", "emoforge.preprocess.asr"}
    got = imports_of(source, "emoforge.agents.x", False, known)
    assert got == {"emoforge.storage.records", "emoforge.agents.base", "emoforge.preprocess.asr"}
    known.add("emoforge.emoforge_cli")
    assert imports_of(source, "emoforge.agents.x", False, known, lazy=True) == got | {"emoforge.emoforge_cli"}
