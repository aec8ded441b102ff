"""The modules of ``pipeline/`` import each other without a cycle, counting the imports made
inside functions too (a lazy import still ties two modules together); ``if TYPE_CHECKING``
imports do not run and do not count. Import order then never matters (``python -c
"import pipeline.models.rnn, pipeline.tune"`` works either way round)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from stage_deps import ROOT, _modules, _tree


def _type_checking_only(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def _targets(node: ast.AST, module: str, known: set[str]) -> set[str]:
    """The pipeline modules an import statement names (not the parent packages it also runs:
    a package's ``__init__`` importing its own modules is not a cycle)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names} & known
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = module if _modules()[module].name == "__init__.py" else module.rpartition(".")[0]
    if node.level:
        base = ".".join(base.split(".")[: len(base.split(".")) - node.level + 1])
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    named = {f"{target}.{alias.name}" for alias in node.names} & known
    return named or ({target} & known)


def import_graph() -> dict[str, set[str]]:
    known = set(_modules())
    graph = {}
    for module in known:
        tree = _tree(module)
        skipped = _type_checking_only(tree)
        graph[module] = {
            target
            for node in ast.walk(tree)
            if id(node) not in skipped
            for target in _targets(node, module, known)
            if target != module
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that starts and ends at the same module, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_pipeline_imports_have_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_imports_inside_functions():
    assert "pipeline.features.sequences" in import_graph()["pipeline.models.rnn"]  # in its factories


@pytest.mark.parametrize(
    "order", [("pipeline.models.rnn", "pipeline.tune"), ("pipeline.tune", "pipeline.models.rnn")]
)
def test_rnn_and_tune_import_in_either_order(order):
    code = f"import importlib; [importlib.import_module(m) for m in {order!r}]"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
