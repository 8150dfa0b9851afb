"""The shape of the code (docs/architecture.md): no import cycle between packages or between files, and the
import contracts in pyproject.toml catch a forbidden import.

grimp (import-linter's graph) sees imports inside functions too, so a cycle hidden in a local import counts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    nodes = set(edges) | {m for targets in edges.values() for m in targets}
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("onetrip")


def _top(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_cycle_between_top_level_packages(graph):
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if _top(module) != _top(imported):
                edges[_top(module)].add(_top(imported))
    assert _cycles(edges) == []


def test_no_cycle_between_files(graph):
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(edges) == []


def _lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run([str(LINT_IMPORTS), str(tree / "pyproject.toml"), "--no-cache", "--no-logo"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def test_contracts_hold_and_catch_a_forbidden_import(tmp_path):
    """The contracts pass on the tree as it is, and fail — naming the contract — once a lower layer imports a
    higher one or a domain imports a sibling's internals."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    clean = _lint(tree)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    masking = tree / "src" / "onetrip" / "kit" / "masking.py"
    masking.write_text(masking.read_text() + "\nfrom onetrip.web import routes as _forbidden  # noqa\n")
    rules = tree / "src" / "onetrip" / "records" / "rules.py"
    rules.write_text(rules.read_text() + "\nfrom onetrip.scheduling import repository as _forbidden  # noqa\n")
    broken = _lint(tree)
    out = broken.stdout + broken.stderr
    assert broken.returncode != 0
    assert "onetrip.kit.masking -> onetrip.web.routes" in out
    assert "onetrip.records.rules -> onetrip.scheduling.repository" in out
    assert "BROKEN" in out
