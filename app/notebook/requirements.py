"""The bundle's requirements.txt: the exact installed version of each distribution the saved model
refers to, and of what those need in turn, not the whole environment of the notebook."""
from __future__ import annotations

import functools
import importlib.metadata as metadata
import pickletools
import re
import sys

from packaging.requirements import InvalidRequirement, Requirement

from app.agent.entrypoint import stdlib_names

_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def pickled_modules(data: bytes) -> set:
    """Top-level modules named in a pickle: its globals (classes, functions), and the modules that
    cloudpickle re-imports for a function's globals (a string naming an imported module)."""
    found, memo, strings = set(), {}, []
    for op, arg, _pos in pickletools.genops(data):
        if op.name in _STRINGS:
            strings.append(arg)
            if isinstance(arg, str) and len(arg) < 200 and _MODULE.fullmatch(arg) and arg in sys.modules:
                found.add(arg)
        elif op.name == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif op.name in _GETS and isinstance(memo.get(arg), str):
            strings.append(memo[arg])
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(strings[-2])
        elif op.name in ("GLOBAL", "INST"):
            found.add(arg.split(" ", 1)[0])
    tops = {name.split(".", 1)[0] for name in found if isinstance(name, str)}
    return {t for t in tops if t not in stdlib_names() and t not in ("builtins", "copyreg", "__builtin__")}


@functools.lru_cache(maxsize=1)
def distributions() -> dict:
    """Top-level module -> distributions installed (a scan of site-packages: kept for one save)."""
    return metadata.packages_distributions()


def local_modules(modules: set) -> set:
    """The modules that no installed distribution provides: the notebook (__main__) and her own
    files. A server cannot import them, so they are pickled by value."""
    provided = distributions()
    return {m for m in modules if m == "__main__" or (m not in provided and m in sys.modules)}


def pinned(modules: set, extra: set) -> list[str]:
    """`name==version` lines for the distributions of `modules` and of `extra` (distribution or
    module names), with everything they require, sorted."""
    provided = distributions()
    todo = [d for m in modules for d in provided.get(m, ())] + sorted(extra)
    seen: dict[str, str] = {}
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(provided.get(name, [name])[0])
        except metadata.PackageNotFoundError:
            continue
        key = _canonical(dist.metadata["Name"])
        if key in seen:
            continue
        seen[key] = f"{dist.metadata['Name']}=={dist.version}"
        for line in dist.requires or ():
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return sorted(seen.values(), key=str.lower)


def python_range() -> str:
    """Her Python's minor version: a pickle of code (cloudpickle) and compiled wheels hold to it."""
    major, minor = sys.version_info[:2]
    return f">={major}.{minor},<{major}.{minor + 1}"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
