"""Package layering of lib/driftline: which top-level packages and modules import which (any import statement,
including type-only and function-local ones, counts).

No import cycle between packages. The layers, bottom up: `errors`, `spec`, `vocabulary` (leaves) → `tables`,
`profiling`, `jvm` → the domain packages (`features`, `quality`, `training`, `scoring`, `registry`,
`monitoring`, `retrain`), each owning its config slice → `runtime`, `config` (assembles the slices) → `jobs`
(the job registry, the context, one module per job) → `pipeline` (schedulers), `cli`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "lib" / "driftline"

DOMAIN = {"features", "quality", "training", "scoring", "registry", "monitoring", "retrain", "profiling", "tables"}
UPPER = {"config", "jobs", "cli", "pipeline", "runtime", "demo"}


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
    assert sorted(cycle_edges(package_edges())) == [], "import cycle between packages"


def test_domain_packages_take_their_slice_not_the_job_context() -> None:
    edges = package_edges()
    assert {(p, q) for p in DOMAIN for q in edges.get(p, ()) if q in UPPER} == set()


def test_profiling_imports_no_domain_package() -> None:
    assert package_edges()["profiling"] <= {"errors", "jvm", "vocabulary"}


def test_the_detector_finds_a_cycle() -> None:
    assert cycle_edges({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {("a", "b"), ("b", "c"), ("c", "a")}
