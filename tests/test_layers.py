"""Layer rules of docs/architecture.md (folders by capability; arrows point down only), checked on the
source with `ast`, so nothing is imported and no import side effect can hide a violation.

  (a) only app/ui imports Qt: PySide6, shiboken6, pyqtgraph;
  (b) app/agent runs on servers on its own: standard library and relative imports inside
      app/agent only (no `app.` imports);
  (c) nothing outside app/ui imports app.ui, except the entry points app/__main__.py (which opens
      the window) and app/cli/audit.py (which borrows Qt's PDF writer for `berth audit export --format pdf`);
  (d) the packages of app/ are stacked in LAYERS, and a module imports only from its own package or
      a lower layer (peers in one layer do not import each other); a package not in LAYERS fails;
  (e) no import cycle between the modules of one package (lazy imports count: they are an arrow too).
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GUI_PACKAGES = {"PySide6", "shiboken6", "pyqtgraph"}
UI_ENTRY_POINTS = {"app/__main__.py", "app/cli/audit.py"}
# rule (b)'s one exception: jobpostgres runs only in a release's virtualenv python (a job process, or
# its `job add` check), where Berth installs the driver; the agent and the scheduler never import it
VENV_ONLY = {("app/agent/jobpostgres.py", "psycopg")}  # may import app.ui (lazily): the window, the PDF writer

# app's packages (or top-level modules), bottom first. A module may import its own package and any
# package of a lower layer: never up, never sideways.
LAYERS = (
    {"agent"},  # runs on servers: standard library only (rule b), so anything may use it
    {"errors", "formatting"},
    {"bundle"},  # the model bundle on disk: manifest, check, archive
    {"notebook"},  # `import berth`: save_bundle, a model from a notebook as a checked bundle
    {"audit"},  # the hash-chained log, its queries and reports, over any SQLite connection
    {"store"},  # Berth's local database (its migrations chain the audit log), paths, servers, activity
    {"remote"},  # transports to a configured server (store.servers), the shared connections
    {"deploy"},
    {"monitor"},
    {"anchoring"},  # the audit anchor's key and desktop id in the keyring (app/anchoring.py)
    {"workspace"},
    {"rollout", "promotion"},  # a change rolled over a group of servers, a release promoted between servers
    {"cli"},
    {"ui"},
    {"__main__"},
)
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


@dataclass(frozen=True, order=True)
class Violation:
    path: str  # relative to the root, with "/"
    line: int
    rule: str  # "qt-outside-ui", "agent-non-stdlib", "imports-ui", "upward", "unlisted", "cycle", "syntax"
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.detail}"


def module_name(rel: Path) -> tuple[str, bool]:
    """('app.deploy.x', is_package) for app/deploy/x.py; ('app.deploy', True) for app/deploy/__init__.py."""
    parts = list(rel.with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def imported_modules(tree: ast.AST, module: str, is_package: bool):
    """Yield (line, absolute_module_name, is_relative) for every import, including the
    `from pkg import sub` form as both `pkg` and `pkg.sub`, and importlib.import_module("x") /
    __import__("x") with a literal name."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, False
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                up = node.level - 1
                if up > len(base_parts):
                    yield node.lineno, "." * node.level + (node.module or ""), True  # beyond top
                    continue
                base = ".".join(base_parts[: len(base_parts) - up])
                target = ".".join(p for p in (base, node.module) if p)
                relative = True
            else:
                target, relative = node.module or "", False
            yield node.lineno, target, relative
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{target}.{alias.name}" if target else alias.name, relative
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__"):
                yield node.lineno, node.args[0].value, node.args[0].value.startswith(".")


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _package(module: str) -> str:
    """The LAYERS name of an app module: 'deploy' for app.deploy.plan, 'cli' for app.cli; '' for app."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "app" else ""


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None; iterative DFS in sorted order (stable reports)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def check_layers(root: Path) -> list[Violation]:
    """All layer violations in root/app/**.py, sorted."""
    app = root / "app"
    violations: set[Violation] = set()
    modules: dict[str, str] = {}  # module -> path
    edges: dict[str, dict[str, int]] = {}  # module -> {module of the same package it imports: line}
    parsed = []
    for path in sorted(app.rglob("*.py")):
        rel = path.relative_to(root)
        module, is_package = module_name(rel)
        modules[module] = rel.as_posix()
        parsed.append((path, rel.as_posix(), module, is_package))
    for path, rel_s, module, is_package in parsed:
        in_ui = _within(module, "app.ui")
        in_agent = _within(module, "app.agent")
        package = _package(module)
        if package and package not in RANK:
            violations.add(Violation(rel_s, 0, "unlisted", f"app.{package} is in no layer of LAYERS"))
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError as exc:
            violations.add(Violation(rel_s, exc.lineno or 0, "syntax", f"cannot parse: {exc.msg}"))
            continue
        for line, name, relative in imported_modules(tree, module, is_package):
            if not in_ui and _top(name) in GUI_PACKAGES:
                violations.add(Violation(rel_s, line, "qt-outside-ui", f"imports {name} (only app/ui may)"))
            if in_agent:
                if relative:
                    if not _within(name, "app.agent"):
                        violations.add(Violation(rel_s, line, "agent-non-stdlib",
                                                 f"relative import reaches {name}, outside app/agent"))
                elif _top(name) not in sys.stdlib_module_names and (rel_s, _top(name)) not in VENV_ONLY:
                    why = "absolute app. import" if _top(name) == "app" else "not in the standard library"
                    violations.add(Violation(rel_s, line, "agent-non-stdlib", f"imports {name} ({why})"))
            if _within(name, "app.ui"):
                if not in_ui and rel_s not in UI_ENTRY_POINTS:
                    violations.add(Violation(rel_s, line, "imports-ui",
                                             f"imports {name} (app.ui is the top layer)"))
                if package != "ui":
                    continue  # rule (c) says all there is to say about an arrow into app.ui
            target = _package(name)
            if in_agent or not package or not target or target not in RANK or package not in RANK:
                continue  # rule (b) covers the agent; `import app` alone; unlisted (reported once above)
            if target != package and RANK[target] >= RANK[package]:
                where = "the same layer" if RANK[target] == RANK[package] else "a higher layer"
                violations.add(Violation(rel_s, line, "upward",
                                         f"app.{package} imports {name}: app.{target} is in {where} (LAYERS)"))
            if target == package and not _within(module, name):  # a parent package comes with any child
                while name and name not in modules:
                    name = name.rpartition(".")[0]  # `from .chain import append` -> app.x.chain
                if name and name != module:
                    edges.setdefault(module, {}).setdefault(name, line)
    graph = {m: set(targets) for m, targets in edges.items()}
    while (cycle := _find_cycle(graph)) is not None:
        first, second = cycle[0], cycle[1]
        violations.add(Violation(modules[first], edges[first][second], "cycle",
                                 "import cycle: " + " -> ".join(cycle)))
        graph[first].discard(second)  # report each cycle once, then look for another
    # `from app import ui` yields both "app" and "app.ui"; one report per line and rule is enough
    unique: dict[tuple[str, int, str], Violation] = {}
    for v in sorted(violations):
        unique.setdefault((v.path, v.line, v.rule), v)
    return sorted(unique.values())


# --- the real tree ---------------------------------------------------------------------------------

def test_app_has_source():
    files = list((REPO / "app").rglob("*.py"))
    assert len(files) >= 2, f"no Python source under {REPO / 'app'}"


def test_layer_rules_hold():
    violations = check_layers(REPO)
    assert not violations, "layer rules broken (see tests/test_layers.py):\n" + "\n".join(map(str, violations))


# --- the checker catches what it must (so the test above can fail) ---------------------------------

def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


GOOD = {
    "app/__init__.py": "",
    "app/__main__.py": "def main():\n    from app.ui.window import run\n    return run()\n",
    "app/cli.py": "import argparse\nfrom app.deploy import deploy\n",
    "app/ui/__init__.py": "",
    "app/ui/window.py": "from PySide6.QtWidgets import QApplication\nimport pyqtgraph as pg\nfrom . import views\n",
    "app/ui/views.py": "import shiboken6\nfrom app.deploy import deploy\n",
    "app/deploy/__init__.py": "from .deploy import deploy\nfrom ..bundle import manifest\n",
    "app/deploy/deploy.py": "import paramiko\nfrom app.remote import ssh\n\ndef deploy():\n    pass\n",
    "app/agent/__init__.py": "",
    "app/agent/__main__.py": "from __future__ import annotations\nimport json, os, sys\nfrom . import lock\nfrom .sub.x import y\n",
    "app/agent/lock.py": "import fcntl\nfrom .journal import append\n",
    "app/agent/sub/__init__.py": "from .. import lock\nfrom ..journal import append\n",
    "app/agent/sub/x.py": "import importlib\nm = importlib.import_module('json')\n",
}


def test_checker_accepts_a_clean_tree(tmp_path):
    assert check_layers(_tree(tmp_path, GOOD)) == []


@pytest.mark.parametrize("rel, source, rule", [
    ("app/deploy/bad.py", "import PySide6\n", "qt-outside-ui"),
    ("app/deploy/bad.py", "from PySide6.QtCore import QObject\n", "qt-outside-ui"),
    ("app/monitor/bad.py", "import pyqtgraph as pg\n", "qt-outside-ui"),
    ("app/cli.py", "def f():\n    import shiboken6\n", "qt-outside-ui"),
    ("app/store/bad.py", "import importlib\nimportlib.import_module('PySide6.QtGui')\n", "qt-outside-ui"),
    ("app/agent/bad.py", "import requests\n", "agent-non-stdlib"),
    ("app/agent/bad.py", "import paramiko.client\n", "agent-non-stdlib"),
    ("app/agent/bad.py", "from app.bundle import manifest\n", "agent-non-stdlib"),
    ("app/agent/bad.py", "import app.agent.lock\n", "agent-non-stdlib"),
    ("app/agent/bad.py", "from .. import store\n", "agent-non-stdlib"),
    ("app/agent/sub/bad.py", "from ...bundle import manifest\n", "agent-non-stdlib"),
    ("app/agent/bad.py", "from PySide6 import QtCore\n", {"qt-outside-ui", "agent-non-stdlib"}),
    ("app/store/bad.py", "from app.ui import window\n", "imports-ui"),
    ("app/store/bad.py", "import app.ui.window\n", "imports-ui"),
    ("app/bundle/bad.py", "from app import ui\n", "imports-ui"),
    ("app/deploy/bad.py", "from ..ui.window import run\n", "imports-ui"),
    ("app/deploy/bad.py", "from .. import ui\n", "imports-ui"),
    ("app/workspace.py", "from app.ui import window\n", "imports-ui"),
    ("app/__init__.py", "from . import ui\n", "imports-ui"),
    ("app/deploy/bad.py", "def broken(:\n", "syntax"),
])
def test_checker_reports_a_violation(tmp_path, rel, source, rule):
    root = _tree(tmp_path, {**GOOD, rel: source})
    violations = check_layers(root)
    expected = {rule} if isinstance(rule, str) else rule
    assert {v.path for v in violations} == {rel}, violations
    assert {v.rule for v in violations} == expected, violations
    assert len(violations) == len(expected), violations


@pytest.mark.parametrize("rel, source", [
    ("app/store/bad.py", "from app.deploy import plan\n"),  # store is below deploy
    ("app/remote/bad.py", "def later():\n    from app.workspace import Workspace\n"),  # lazy: still an arrow
    ("app/audit/bad.py", "import app.store.db\n"),
    ("app/deploy/bad.py", "from ..cli import main\n"),
    ("app/monitor/bad.py", "import importlib\nimportlib.import_module('app.workspace')\n"),
    ("app/errors.py", "from app.formatting import human_bytes\n"),  # one layer: peers, not above
    ("app/ui/bad.py", "from app.__main__ import main\n"),
])
def test_checker_reports_an_upward_arrow(tmp_path, rel, source):
    violations = check_layers(_tree(tmp_path, {**GOOD, rel: source}))
    assert [(v.path, v.rule) for v in violations] == [(rel, "upward")], violations


def test_checker_reports_a_package_in_no_layer(tmp_path):
    violations = check_layers(_tree(tmp_path, {**GOOD, "app/plugins/__init__.py": "", "app/plugins/x.py": ""}))
    assert {(v.path, v.rule) for v in violations} == {("app/plugins/__init__.py", "unlisted"),
                                                      ("app/plugins/x.py", "unlisted")}, violations


CYCLES = {
    "two modules, one import lazy": {
        "app/audit/log.py": "from .query import query_events\n",
        "app/audit/query.py": "def f():\n    from app.audit.log import FIELDS\n",
    },
    "three modules": {
        "app/store/a.py": "from . import b\n", "app/store/b.py": "from .c import x\n",
        "app/store/c.py": "import app.store.a\n",
    },
    "through a package's __init__": {
        "app/store/__init__.py": "from .db import open_db\n", "app/store/db.py": "from .paths import home\n",
        "app/store/paths.py": "from app.store import db\n",
    },
    "inside a subpackage of app/ui": {
        "app/ui/audit/__init__.py": "", "app/ui/audit/page.py": "from app.ui.audit.rows import Row\n",
        "app/ui/audit/rows.py": "from .page import Page\n",
    },
}


@pytest.mark.parametrize("files", CYCLES.values(), ids=CYCLES.keys())
def test_checker_reports_a_cycle_inside_a_package(tmp_path, files):
    violations = check_layers(_tree(tmp_path, {**GOOD, **files}))
    assert [v.rule for v in violations] == ["cycle"], violations
    assert violations[0].path in files and violations[0].line >= 1, violations


def test_checker_accepts_imports_of_a_parent_package_and_down_the_layers(tmp_path):
    files = {
        "app/store/__init__.py": "from .db import open_db\n",
        "app/store/db.py": "from app.store import paths\nfrom app.audit.chain import rechain_all\n",
        "app/store/paths.py": "from app import errors\n",
        "app/audit/__init__.py": "", "app/audit/chain.py": "import hashlib\nfrom app.agent import lock\n",
        "app/monitor/__init__.py": "", "app/monitor/history.py": "from app.store.db import migrate\n",
        "app/workspace.py": "from app.monitor.history import History\nfrom app.remote import shared\n",
    }
    assert check_layers(_tree(tmp_path, {**GOOD, **files})) == []
