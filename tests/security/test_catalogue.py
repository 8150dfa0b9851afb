"""The security suite's catalogue (tests/security/catalogue.py) names tests that exist, and docs/security.md's
等保 checklist lists every probe of it — so neither can drift from the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.security.catalogue import PROBES

ROOT = Path(__file__).resolve().parents[2]


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


@pytest.mark.parametrize("probe", PROBES, ids=[p.key for p in PROBES])
def test_every_probe_names_an_existing_test(probe):
    path, name = probe.test.split("::")
    assert (ROOT / path).is_file(), f"{probe.key}: no file {path}"
    assert name.startswith("test_") and name in _functions(ROOT / path), f"{probe.key}: no test {name} in {path}"


def test_keys_are_unique_and_the_checklist_lists_each():
    keys = [p.key for p in PROBES]
    assert len(keys) == len(set(keys))
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    missing = [k for k in keys if f"`{k}`" not in doc]
    assert not missing, f"docs/security.md's checklist does not list {missing}"


def test_the_suite_is_marked(request):
    """tests/conftest.py marks every listed test ``security`` (so ``pytest -m security`` runs the suite)."""
    assert request.node.get_closest_marker("security") is not None
