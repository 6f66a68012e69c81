"""The packages' import directions, read from the source (ast), so no import can hide them.

spaces/ is the leaf: it imports nothing else of ours and no ML framework, so that search/ and
results/ can both use it. results/ imports only spaces/ of ours, and never TensorFlow or Ray
(it runs where neither is installed or wanted).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = frozenset({"search", "spaces", "results"})
RULES = {
    # package: (our packages it may import, third-party packages it must never import)
    "spaces": (frozenset({"spaces"}), frozenset({"keras", "tensorflow", "ray", "optuna"})),
    "results": (frozenset({"results", "spaces"}), frozenset({"keras", "tensorflow", "ray"})),
}


def imported_packages(path: Path, package: str) -> set[str]:
    """The top-level package of every import in the module, wherever it stands (functions,
    `if TYPE_CHECKING:` blocks included). Relative imports count as `package`, its own."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.add(package)
            elif node.module:
                found.add(node.module.split(".")[0])
    return found


def violations(package: str, root: Path = REPO) -> list[str]:
    allowed, forbidden = RULES[package]
    bad = []
    for path in sorted((root / package).rglob("*.py")):
        for name in sorted(imported_packages(path, package)):
            if (name in OURS and name not in allowed) or name in forbidden:
                bad.append(f"{path.relative_to(root)} imports {name}")
    return bad


@pytest.mark.parametrize("package", sorted(RULES))
def test_import_directions(package):
    assert (REPO / package / "__init__.py").is_file()
    assert violations(package) == []


def test_the_check_sees_imports_anywhere_in_a_module(tmp_path):
    """A forbidden import inside a function is found; a relative one is the package's own."""
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bad.py").write_text(
        "from . import render\n"
        "def f():\n    import ray.tune\n    from search.constants import EPOCH\n")
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "bad.py").write_text("from results import leaderboard\n")
    assert violations("results", tmp_path) == ["results/bad.py imports ray",
                                               "results/bad.py imports search"]
    assert violations("spaces", tmp_path) == ["spaces/bad.py imports results"]
