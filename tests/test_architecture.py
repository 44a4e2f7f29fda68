"""gm's imports point down the layers docs/architecture.md names, and never in a circle.

The import graph is read from the source (every ``import gm…`` and ``from gm… import``,
at module level or inside a function), so a lazy import counts like any other. ``LAYERS``
is the table of the architecture page; the last test checks that the page says the same.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. A module may import from its own layer and the ones below it. A name
# covers the module and everything inside it, except ``gm``, which is the package's
# ``__init__`` alone.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "base",
        [
            "gm.errors",
            "gm.atomic",
            "gm.config",
            "gm.runtime",
            "gm.cli",
            "gm.help",
            "gm.modes",
            "gm.figures",
            "gm.state",
            "gm.settings",
            "gm.run",
            "gm.intervals",
        ],
    ),
    ("recurrence", ["gm.nn"]),
    ("data and models", ["gm.data", "gm.models"]),
    ("evaluation", ["gm.metrics", "gm.evaluation"]),
    ("artifacts", ["gm.artifacts"]),
    ("training and generation", ["gm.training", "gm.generation"]),
    ("runs", ["gm.runs", "gm.explorer"]),
    # The package's __init__ is on top: it hands out gm.api's functions (imported on use).
    (
        "commands and the Python API",
        ["gm.export", "gm.report", "gm.study", "gm.search", "gm.explore", "gm.api", "gm"],
    ),
]


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the ``gm`` package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((root / "gm").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(root: Path = ROOT) -> set[tuple[str, str]]:
    """``(importer, imported)`` for every import of one gm module by another."""
    mods = modules(root)

    def known(name: str) -> str | None:
        # ``from gm.models import build_model`` names gm.models.build_model: the module is
        # the longest prefix that is one.
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges = set()
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against this module's package
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                module = known(target) if target.split(".")[0] == "gm" else None
                if module is not None and module != name:
                    edges.add((name, module))
    return edges


def layer_of(module: str) -> int | None:
    """The index in ``LAYERS`` of ``module``'s layer, or None when no row names it."""
    best, depth = None, -1
    for i, (_, names) in enumerate(LAYERS):
        for n in names:
            covers = module == n or (n != "gm" and module.startswith(n + "."))
            if covers and len(n) > depth:
                best, depth = i, len(n)
    return best


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def upward(edges: set[tuple[str, str]]) -> list[str]:
    """Each import from a lower layer into a higher one, as ``a -> b (layer -> layer)``."""
    found = []
    for a, b in sorted(edges):
        la, lb = layer_of(a), layer_of(b)
        if la is not None and lb is not None and lb > la:
            found.append(f"{a} -> {b} ({LAYERS[la][0]} -> {LAYERS[lb][0]})")
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in modules() if layer_of(m) is None]
    assert not unplaced, f"add these to LAYERS and docs/architecture.md: {unplaced}"


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_no_import_points_up_the_layers() -> None:
    assert upward(import_graph()) == []


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    # A copy of gm with evaluation importing training (up) and the artifacts importing
    # generation, which imports the artifacts (a cycle).
    for path in modules().values():
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    (tmp_path / "gm" / "evaluation.py").write_text("import gm.training.task\n")
    (tmp_path / "gm" / "artifacts.py").write_text("from gm.generation.run import run\n")
    edges = import_graph(tmp_path)
    assert "gm.evaluation -> gm.training.task (evaluation -> training and generation)" in upward(
        edges
    )
    assert ["gm.artifacts", "gm.generation.run"] in cycles(edges)


@pytest.mark.parametrize("source", ["gm/x.py:from . import errors", "gm/a/b.py:from .. import c"])
def test_relative_imports_resolve(tmp_path: Path, source: str) -> None:
    file, text = source.split(":")
    for path in ("gm/__init__.py", "gm/errors.py", "gm/c.py", "gm/a/__init__.py", file):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    (tmp_path / file).write_text(text + "\n")
    target = "gm.errors" if "errors" in text else "gm.c"
    assert (file[:-3].replace("/", "."), target) in import_graph(tmp_path)


def test_the_architecture_page_names_these_layers() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    section = page.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if re.match(r"\|\s*\d", line)]
    documented = [
        (re.sub(r"^\d+\s*", "", cells[0].strip()), re.findall(r"`([\w.]+)`", cells[1]))
        for cells in rows
    ]
    assert documented == LAYERS[::-1], "docs/architecture.md lists the layers top first"
