"""What each ``dvc.yaml`` stage runs, derived from the code: the pipeline files it imports and
the params keys it reads. ``tests/test_stage_deps.py`` compares this with ``dvc.yaml``;
``python tests/stage_deps.py`` prints the derived ``deps``/``params`` of every stage.

Static analysis with ``ast`` (nothing is executed, so it also covers TensorFlow stages):

* Roots. A stage runs ``python -m pipeline <command> ...``: the handler that
  ``build_parser`` wires to ``<command>`` (read from the parser itself), plus the two
  by-name imports the code makes: ``__main__._STAGES`` (command -> module and function) and
  the model registry for ``train`` (``MODELS[model].factory`` and its hooks ``.skip``, ``.before_folds``, ``.plan`` close
  over their module and function).
* Reachability by *name*. A function or class defined in a loaded module is reached when a
  reached body mentions its name (call, reference or attribute; type annotations do not
  count). A reached class runs its class body, dunder methods and decorated methods
  (validators, properties); other methods are reached by name like functions. A module is
  loaded when a loaded module's top level, or a reached body, imports it; importing
  ``pipeline.a.b`` also runs ``pipeline/__init__.py`` and ``pipeline/a/__init__.py``.
  Matching names rather than types over-approximates (every loaded ``fit`` is reached); it
  never misses a static call. ``build_parser`` is not followed (it wires every command),
  nor ``__main__.main`` (it only calls the handler and reports errors).
* Params reads. Attribute chains on a variable named ``params`` (the convention of every
  stage function), or on a local alias ``comp = params.competition`` (an alias used bare
  reads its whole chain), cut at the first
  attribute that is not a params field: ``params.tfidf.word.C`` reads ``tfidf.word.C``;
  ``params.models.all`` and ``getattr(params.validation, name)`` read the whole section;
  ``params.model_dump()`` reads every key (``"*"``, the whole params.yaml); ``model_copy``
  reads nothing (the copy's reads are counted where they happen). Validation at load time
  is not a read: it does not change what a stage writes (nor is the registry's
  ``check_models``, see ``VALIDATORS``). dvc.yaml lists keys at most two
  levels deep (``tfidf.word``), which covers the leaves below.

Honest limits: a new by-name import (``importlib``) or a params object under another
variable name is invisible here, so keep both conventions (the two registries above).
"""

from __future__ import annotations

import ast
import inspect
import shlex
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "pipeline"
NOT_FOLLOWED = {("pipeline.__main__", "build_parser")}
READS_NOTHING = {"model_copy"}
READS_ALL = {"model_dump", "model_dump_json"}
WHOLE_FILE = "*"


@cache
def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(_modules()[module].read_text(encoding="utf-8"))


def _is_package(module: str) -> bool:
    return _modules()[module].name == "__init__.py"


def _imported(node: ast.AST, module: str) -> set[str]:
    """Pipeline modules an ``import``/``from ... import`` statement loads (with parents)."""
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if _is_package(module) else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = {target} | {f"{target}.{alias.name}" for alias in node.names}
    loaded = set()
    for name in names:
        parts = name.split(".")
        loaded |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return loaded & set(_modules())


def _is_main_guard(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and "__main__" in ast.unparse(node.test)
        and "__name__" in ast.unparse(node.test)
    )


def _walk(node: ast.AST, into_functions: bool):
    """Nodes under ``node``, skipping type annotations (and nested defs unless asked)."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if _is_main_guard(child):  # `if __name__ == "__main__":` does not run on import
            continue
        yield child
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not into_functions:
            stack.extend(child.decorator_list)
            if isinstance(child, ast.ClassDef):
                stack.extend(
                    s for s in child.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                )
            continue
        for name, value in ast.iter_fields(child):
            if name in ("annotation", "returns"):
                continue
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, ast.AST):
                    stack.append(item)


def _body_nodes(body: ast.AST) -> list[ast.AST]:
    """What runs when ``body`` is reached: a function's whole body; a class's own statements."""
    return list(_walk(body, into_functions=not isinstance(body, ast.ClassDef)))


def _mentions(nodes) -> set[str]:
    """Names and attributes used; a function's own variables and arguments shadow globals."""
    local = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    local |= {n.arg for n in nodes if isinstance(n, ast.arg)}
    return {n.id for n in nodes if isinstance(n, ast.Name) and n.id not in local} | {
        n.attr for n in nodes if isinstance(n, ast.Attribute)
    }


def _definitions(module: str) -> dict[str, list[ast.AST]]:
    """Top-level functions and classes, and methods, by name."""
    defs: dict[str, list[ast.AST]] = {}
    for node in _tree(module).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs.setdefault(node.name, []).append(node)
        if isinstance(node, ast.ClassDef):
            for method in node.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    defs.setdefault(method.name, []).append(method)
    return defs


def _runs_with_class(method: ast.AST) -> bool:
    return isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
        bool(method.decorator_list) or (method.name.startswith("__") and method.name.endswith("__"))
    )


def reach(modules: set[str], names: set[str]) -> tuple[set[str], list[tuple[str, ast.AST]]]:
    """Loaded modules and reached bodies, from root modules and root names (a fixpoint)."""
    loaded: set[str] = set()
    reached: dict[int, tuple[str, ast.AST]] = {}
    pending_modules, names = set(modules) | {PACKAGE}, set(names)
    while True:
        new_modules = pending_modules - loaded
        for module in new_modules:
            loaded.add(module)
            top = list(_walk(_tree(module), into_functions=False))
            pending_modules |= set().union(*(_imported(n, module) for n in top))
            names |= {n.id for n in top if isinstance(n, ast.Name)} | _mentions(top)
        grew = bool(new_modules)
        for module in sorted(loaded):
            for name, nodes in _definitions(module).items():
                if name not in names or (module, name) in NOT_FOLLOWED:
                    continue
                bodies = list(nodes)
                for node in nodes:
                    if isinstance(node, ast.ClassDef):
                        bodies += [m for m in node.body if _runs_with_class(m)]
                for body in bodies:
                    if id(body) in reached:
                        continue
                    reached[id(body)] = (module, body)
                    grew = True
                    inner = _body_nodes(body)
                    pending_modules |= set().union(*(_imported(n, module) for n in inner))
                    names |= _mentions(inner)
        if not grew and not (pending_modules - loaded):
            return loaded, list(reached.values())


def _params_fields():
    from pipeline.core.params import Params

    return Params


def _field_path(chain: list[str]) -> str | None:
    """``["tfidf", "word", "C"]`` -> ``"tfidf.word.C"``, cut at the first non-field."""
    from pydantic import BaseModel

    model, keys = _params_fields(), []
    for attr in chain:
        if attr in READS_ALL and not keys:
            return WHOLE_FILE
        if attr in READS_NOTHING:
            return None
        fields = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        if attr not in fields:
            break
        keys.append(attr)
        model = fields[attr].annotation
    return ".".join(keys) or None


def _chain(node: ast.AST) -> tuple[str, list[str]] | None:
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node.id, attrs[::-1]) if isinstance(node, ast.Name) else None


# Functions that only validate params (they return them unchanged or raise), like the
# schema's own validators: what they look at does not change what a stage writes.
VALIDATORS = {"check_models"}


def params_read(bodies: list[tuple[str, ast.AST]]) -> set[str]:
    """Params keys read in ``bodies`` (see the module docstring)."""
    reads: set[str] = set()
    for _, body in bodies:
        if getattr(body, "name", "") in VALIDATORS:
            continue
        nodes = _body_nodes(body)
        aliases = {"params": []}
        for node in nodes:  # x = params.a.b  ->  x.c reads a.b.c
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                found = _chain(node.value)
                if found and found[0] == "params" and found[1]:
                    aliases[node.targets[0].id] = found[1]
        inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}  # keep the longest chain
        alias_defs = {id(n.value) for n in nodes if isinstance(n, ast.Assign)}
        for node in nodes:  # an alias used bare (n = params.cv.folds; range(n)) reads it whole
            if (
                isinstance(node, ast.Name)
                and isinstance(node.ctx, ast.Load)
                and node.id != "params"
                and node.id in aliases
                and id(node) not in inner
            ):
                key = _field_path(aliases[node.id])
                if key:
                    reads.add(key)
        for node in nodes:
            if not isinstance(node, ast.Attribute) or id(node) in inner or id(node) in alias_defs:
                continue
            found = _chain(node)
            if found and found[0] in aliases:
                key = _field_path(aliases[found[0]] + found[1])
                if key:
                    reads.add(key)
    return reads


def _handler(command: list[str]):
    from pipeline.__main__ import build_parser

    return build_parser().parse_args(command).func


def _roots(argv: list[str]) -> tuple[set[str], set[str]]:
    """Root modules and names for ``python -m pipeline <argv>``."""
    from pipeline.__main__ import _STAGES
    from pipeline.models import MODELS

    handler = _handler(argv)
    modules, names = {"pipeline.__main__"}, {handler.__qualname__.split(".")[0]}
    command = argv[0]
    if command in _STAGES:
        module, function, _ = _STAGES[command]
        modules.add(f"{PACKAGE}.{module}")
        names.add(function)
    if command == "train":  # only train runs the registry's factory and hooks (tune: its own)
        spec = MODELS[argv[argv.index("--model") + 1]]
        for lazy in filter(None, (spec.factory, spec.skip, spec.before_folds, spec.plan)):
            target = inspect.getclosurevars(lazy).nonlocals
            modules.add(f"{PACKAGE}.models.{target['module']}")
            names.add(target["function"])
    return modules, names


def _depth2(key: str) -> str:
    return ".".join(key.split(".")[:2])


def normalise(keys: set[str]) -> set[str]:
    """Keys cut to two levels, without keys already covered by an ancestor in the set."""
    if WHOLE_FILE in keys:
        return {WHOLE_FILE}
    cut = {_depth2(k) for k in keys}
    return {k for k in cut if not any(k.startswith(other + ".") for other in cut)}


def derive(cmd: str) -> tuple[set[str], set[str]]:
    """(pipeline files relative to the repo root, params keys) for one stage command."""
    argv = shlex.split(cmd)
    if argv[:3] != ["python", "-m", PACKAGE]:
        raise ValueError(f"stage command {cmd!r} does not start with 'python -m {PACKAGE}'")
    modules, names = _roots(argv[3:])
    loaded, bodies = reach(modules, names)
    files = {_modules()[m].relative_to(ROOT).as_posix() for m in loaded}
    return files, normalise(params_read(bodies))


def dvc_stages() -> dict[str, list]:
    """``dvc.yaml`` stages as DVC expands them (foreach/matrix), grouped by definition name."""
    from dvc.repo import Repo

    groups: dict[str, list] = {}
    with Repo(str(ROOT)) as repo:
        for stage in repo.index.stages:
            groups.setdefault(stage.name.split("@")[0], []).append(stage)
    return groups


def listed(stage) -> tuple[set[str], set[str]]:
    """(code files under pipeline/, params keys) that a DVC stage lists; directories expanded."""
    files, keys = set(), set()
    for dep in stage.deps:
        if type(dep).__name__ == "ParamsDependency":
            keys |= set(dep.params) if dep.params else {WHOLE_FILE}
            continue
        path = ROOT / dep.def_path
        if dep.def_path.split("/")[0] != PACKAGE:
            continue
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        files |= {p.relative_to(ROOT).as_posix() for p in found}
    return files, keys


def main() -> None:
    for name, stages in dvc_stages().items():
        files, keys = set(), set()
        for stage in stages:
            more_files, more_keys = derive(stage.cmd)
            files, keys = files | more_files, keys | more_keys
        print(
            f"{name}:\n  deps:\n"
            + "".join(f"    - {f}\n" for f in sorted(files))
            + f"  params: [{', '.join(sorted(normalise(keys)))}]"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
