"""Layer rules of docs/DESIGN (folders by capability; arrows point down only), checked on the source
with `ast`, so nothing is imported and no import side effect can hide a violation.

  (a) only app/ui imports Qt: PySide6, shiboken6, pyqtgraph;
  (b) app/agent runs on servers on its own: standard library and relative imports inside
      app/agent only (no `app.` imports);
  (c) nothing outside app/ui imports app.ui, except the entry points app/__main__.py (which opens
      the window) and app/cli.py (which borrows Qt's PDF writer for `berth audit export --format pdf`).
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GUI_PACKAGES = {"PySide6", "shiboken6", "pyqtgraph"}
UI_ENTRY_POINTS = {"app/__main__.py", "app/cli/audit.py"}  # may import app.ui (lazily): the window, the PDF writer


@dataclass(frozen=True, order=True)
class Violation:
    path: str  # relative to the root, with "/"
    line: int
    rule: str  # "qt-outside-ui", "agent-non-stdlib", "imports-ui", "syntax"
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


def check_layers(root: Path) -> list[Violation]:
    """All layer violations in root/app/**.py, sorted."""
    app = root / "app"
    violations: set[Violation] = set()
    for path in sorted(app.rglob("*.py")):
        rel = path.relative_to(root)
        rel_s = rel.as_posix()
        module, is_package = module_name(rel)
        in_ui = _within(module, "app.ui")
        in_agent = _within(module, "app.agent")
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
                elif _top(name) not in sys.stdlib_module_names:
                    why = "absolute app. import" if _top(name) == "app" else "not in the standard library"
                    violations.add(Violation(rel_s, line, "agent-non-stdlib", f"imports {name} ({why})"))
            if not in_ui and rel_s not in UI_ENTRY_POINTS and _within(name, "app.ui"):
                violations.add(Violation(rel_s, line, "imports-ui", f"imports {name} (app.ui is the top layer)"))
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
    ("app/monitoring/bad.py", "import pyqtgraph as pg\n", "qt-outside-ui"),
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
    ("app/services/bad.py", "from app import ui\n", "imports-ui"),
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
