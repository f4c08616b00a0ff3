"""Does the entry point name a module of the bundle, and does that module define the attribute?

Checked statically (no import: the bundle's requirements are not installed on the desktop).
"""
from __future__ import annotations

import ast
import threading
from pathlib import Path

from app.agent.entrypoint import module_problem

from .manifest import Problem

# CPython 3.11 keeps ast.parse's recursion count in state shared by all threads (gh-106905): two
# bundles checked at once (a group deploy) fail with "AST constructor recursion depth mismatch"
_PARSING = threading.Lock()
HINT = "entrypoint is module:attribute, the module relative to the bundle root (pkg.mod -> pkg/mod.py)"


def module_candidates(module: str) -> list[str]:
    """`a.b` -> ["a/b.py", "a/b/__init__.py"]: where Python would find it with the bundle on sys.path."""
    base = module.replace(".", "/")
    return [f"{base}.py", f"{base}/__init__.py"]


def check_entrypoint(folder: Path, entrypoint: str, exists, out) -> None:
    module, _, attr = entrypoint.partition(":")
    shadowed = module_problem(module)
    if shadowed:
        out.error("model.entrypoint", f"{entrypoint!r} {shadowed}",
                  "rename the module (e.g. model.py with entrypoint = \"model:Model\")")
        return
    candidates = module_candidates(module)
    found = next((c for c in candidates if exists(c)), None)
    if found is None:
        out.error("model.entrypoint", f"module {module!r} not found: expected {' or '.join(candidates)}", HINT)
        return
    try:
        source = (folder / found).read_bytes()
        with _PARSING:
            tree = ast.parse(source, filename=found)
    except SyntaxError as exc:
        out.problems.append(Problem("error", f"syntax error: {exc.msg}", found, "model.entrypoint", exc.lineno,
                                    "the entry point module must be valid Python"))
        return
    except ValueError as exc:  # null bytes and the like
        out.problems.append(Problem("error", f"cannot be parsed as Python ({exc})", found, "model.entrypoint"))
        return
    names = top_level_names(tree.body)
    if names is not None and attr not in names:
        out.warning("model.entrypoint", f"{found} does not define {attr!r} at top level",
                    "define it as a function or class in that module (or ignore this if it is created dynamically)")


def top_level_names(body: list[ast.stmt]) -> set[str] | None:
    """Names a module binds at import time; None when `from x import *` makes that unknowable."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                for inner in getattr(node, block, []):
                    found = top_level_names(inner.body if isinstance(inner, ast.ExceptHandler) else [inner])
                    if found is None:
                        return None
                    names |= found
    return names
