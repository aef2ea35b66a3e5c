"""The import graph shows the architecture: no circles, no arrows pointing up, no module doing two jobs at length.

Layers, top to bottom: ``bench`` → ``ops`` (the app: the operator CLI) → ``local_aws`` (the emulated services) →
``local_aws.constants``; ``tools`` are leaves that import nothing of the project. Every import counts, including
the ones inside functions (a deferred import is still an arrow) and under ``TYPE_CHECKING`` (a module that needs
another's types depends on it; a Protocol states the need without the arrow).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("local_aws", "ops", "tools", "bench")
# Who may import whom (project packages only; third-party imports are unrestricted).
ALLOWED = {
    "bench": {"bench", "ops", "local_aws", "tools"},
    "ops": {"ops", "local_aws", "tools"},
    "local_aws": {"local_aws"},
    "tools": {"tools"},
}
MAX_LINES = 500  # "about 400 lines" plus docstrings; a longer module must be split


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports, resolved to the most specific known module."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_no_arrow_points_up(graph: dict[str, set[str]]) -> None:
    wrong = sorted(
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if target.split(".")[0] not in ALLOWED[source.split(".")[0]]
    )
    assert wrong == []


def test_import_graph_has_no_cycle(graph: dict[str, set[str]]) -> None:
    # Package __init__ modules are skipped as cycle members: importing a submodule runs its package first, which
    # is not an arrow of the architecture.
    edges = {s: {t for t in ts if not (REPO / t.replace(".", "/") / "__init__.py").exists()} for s, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target] if target in stack else [node, target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def test_the_services_never_reach_the_app(graph: dict[str, set[str]]) -> None:
    assert not {t for s, ts in graph.items() if s.startswith("local_aws") for t in ts if t.startswith("ops")}


def test_no_module_of_the_local_runtime_runs_its_own_http_server() -> None:
    offenders = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if "http.server" in text.replace("local_aws.http.server", "") or "socketserver" in text:
            offenders.append(name)
    assert offenders == []


def test_modules_stay_small() -> None:
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_one_constants_module() -> None:
    """Account, region and the payload limit are spelled out in constants.py only."""
    literals = ("123456789012", "6_291_456", "6291456")
    repeated = []
    for name, path in _modules().items():
        if name == "local_aws.constants":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str | int) and str(value).replace("_", "") in {x.replace("_", "") for x in literals}:
                repeated.append(f"{name}:{node.lineno}")
            if value == "us-east-1":
                repeated.append(f"{name}:{node.lineno}")
    assert repeated == []


def test_test_modules_have_unique_basenames() -> None:
    """pytest imports test modules by basename here (no packages): two files of one name fail the whole collection."""
    names: dict[str, list[str]] = {}
    for path in (REPO / "tests").rglob("test_*.py"):
        names.setdefault(path.name, []).append(str(path.relative_to(REPO)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}
