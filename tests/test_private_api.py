"""No file of ``pipeline/`` reaches into a library's private API (Optuna's ``_storage``,
Keras' ``_symbolic_build``...) except the one adapter that names what it relies on.

A private name is an attribute, a ``getattr``/``hasattr``/``setattr`` string or an imported
module path starting with one underscore (dunders are public). ``self._x``/``cls._x`` are a
class's own; relative imports and ``pipeline.*`` modules are this project's own.
"""

from __future__ import annotations

import ast

import pytest

from stage_deps import ROOT

ADAPTERS = {"pipeline/core/keras_adapter.py"}
OWN = {"self", "cls"}
DOCUMENTED = {("os", "_exit")}  # public despite the underscore (the standard library's docs)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str) -> list[str]:
    """``line: name`` for every use of a private name of someone else's API in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value.id if isinstance(node.value, ast.Name) else ""
            if owner not in OWN and (owner, node.attr) not in DOCUMENTED:
                found.append(f"{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("getattr", "hasattr", "setattr") and len(node.args) >= 2:
                name = node.args[1]
                if isinstance(name, ast.Constant) and isinstance(name.value, str) and _private(name.value):
                    found.append(f"{node.lineno}: {node.func.id}(..., {name.value!r})")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # this package's own modules
            paths = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for path in paths:
                parts = path.split(".")
                if parts[0] != "pipeline" and (any(map(_private, parts)) or parts[:2] == ["keras", "src"]):
                    found.append(f"{node.lineno}: import {path}")
    return found


def test_no_private_library_names_outside_the_adapter():
    problems = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative not in ADAPTERS:
            problems += [f"{relative}:{use}" for use in private_uses(path.read_text(encoding="utf-8"))]
    assert not problems, "private API outside pipeline/core/keras_adapter.py (move it there): " + "; ".join(
        problems
    )


@pytest.mark.parametrize(
    "source",
    [
        "study._storage.set_trial_state_values(trial._trial_id, 1)",
        "model._symbolic_build(data_batch=None)",
        "hasattr(model, '_symbolic_build')",
        "from optuna._imports import try_import",
        "import keras.src.backend",
        "from keras.src import ops",
    ],
)
def test_the_check_finds_private_names(source):
    assert private_uses(source)


@pytest.mark.parametrize(
    "source",
    ["self._tok.encode(x)", "cls._cache", "x.__class__", "from ._download import fetch_url", "import optuna"],
)
def test_the_check_allows_own_and_public_names(source):
    assert not private_uses(source)
