"""Package layering of lib/driftline: which top-level packages import which (any import statement, including
type-only and function-local ones, counts).

Today one knot ties most packages together: `config` assembles every package's config slice (so it imports
them and they import it), and `context` / `jobs` sit between the jobs. Untying it is planned work; until then
this test fails on any NEW edge inside a cycle, and on a listed edge that no longer is in one (so the list only
shrinks). The profile code (`profiling`) imports no domain package and is in no cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "lib" / "driftline"

# (importer, imported) edges that lie on an import cycle today: burn down, never add
KNOWN_CYCLE_EDGES = {
    ("config", "features"), ("config", "retrain"), ("config", "scoring"), ("config", "training"),
    ("context", "config"), ("context", "jobs"), ("features", "context"), ("features", "jobs"), ("jobs", "context"),
    ("jobs", "features"), ("jobs", "monitoring"), ("jobs", "pipeline"), ("jobs", "retrain"), ("jobs", "scoring"),
    ("jobs", "training"), ("monitoring", "config"), ("monitoring", "context"), ("monitoring", "jobs"),
    ("monitoring", "registry"), ("monitoring", "training"), ("pipeline", "context"), ("pipeline", "jobs"),
    ("registry", "config"), ("retrain", "config"), ("retrain", "context"), ("retrain", "jobs"),
    ("retrain", "registry"), ("scoring", "config"), ("scoring", "context"), ("scoring", "jobs"),
    ("scoring", "registry"), ("scoring", "training"), ("training", "config"), ("training", "context"),
    ("training", "features"), ("training", "jobs"), ("training", "monitoring"), ("training", "registry"),
}


def package_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in LIB.rglob("*.py"):
        rel = path.relative_to(LIB)
        importer = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "driftline" and len(parts) > 1 and parts[1] != importer:
                    edges[importer].add(parts[1])
    return edges


def cycle_edges(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    return {(a, b) for a in list(edges) for b in edges[a] if a in reachable(b)}


def test_no_new_import_cycle_between_packages() -> None:
    found = cycle_edges(package_edges())
    assert sorted(found - KNOWN_CYCLE_EDGES) == [], "new import cycle between packages"
    assert sorted(KNOWN_CYCLE_EDGES - found) == [], "no longer on a cycle: remove from KNOWN_CYCLE_EDGES"


def test_profiling_imports_no_domain_package() -> None:
    assert package_edges()["profiling"] <= {"errors", "jvm", "vocabulary"}


def test_the_detector_finds_a_cycle() -> None:
    assert cycle_edges({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {("a", "b"), ("b", "c"), ("c", "a")}
