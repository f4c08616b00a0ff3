"""The agent runs on servers with Python 3.8: its source must parse with the 3.8 grammar and avoid
the newer library calls we are most likely to reach for by habit."""
import ast
import os
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parent.parent / "app" / "agent"
NEWER_CALLS = {"removeprefix", "removesuffix", "is_relative_to", "readlink", "bit_count", "pairwise"}


@pytest.mark.parametrize("path", sorted(AGENT.glob("*.py")), ids=lambda p: p.name)
def test_agent_module_is_python38(path):
    tree = ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Match), f"{path.name}:{node.lineno}: match needs Python 3.10"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and isinstance(node.left, ast.Dict):
            raise AssertionError(f"{path.name}:{node.lineno}: dict | dict needs Python 3.9")
        if isinstance(node, ast.Attribute) and node.attr in NEWER_CALLS and not _is_os_readlink(node):
            raise AssertionError(f"{path.name}:{node.lineno}: .{node.attr}() needs Python 3.9+")
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in ("list", "dict", "tuple", "set"):
            raise AssertionError(f"{path.name}:{node.lineno}: {node.value.id}[...] at runtime needs Python 3.9")


def _is_os_readlink(node):  # os.readlink is old; Path.readlink() is 3.9
    return node.attr == "readlink" and isinstance(node.value, ast.Name) and node.value.id == "os"


def test_the_checker_catches_newer_syntax(tmp_path):
    with pytest.raises(SyntaxError):
        ast.parse("match x:\n    case 1: pass\n", feature_version=(3, 8))
    bad = tmp_path / "bad.py"
    bad.write_text("x = 'a'.removeprefix('b')\n")
    with pytest.raises(AssertionError):
        test_agent_module_is_python38(bad)


def _python38():
    import glob
    import shutil
    import subprocess
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8"))) + \
        [p for p in [shutil.which("python3.8")] if p]
    for exe in candidates:  # a pyenv shim may exist and still refuse to run: try each for real
        if subprocess.run([exe, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
                          capture_output=True).returncode == 0:
            return exe
    return None


@pytest.mark.skipif(_python38() is None, reason="no Python 3.8 interpreter on this machine (pyenv 3.8 has one)")
def test_deploy_predict_and_rollback_with_a_python38_server(tmp_path):
    """The whole server side (agent, venv, runner) under a real Python 3.8."""
    from agent_kit import stop_all
    from app.audit.log import AuditLog
    from app.deploy import queries
    from app.deploy.changes import change, run_to_end
    from app.deploy.deploy import Deploy
    from app.remote.local import LocalTransport
    from app.store.db import open_db
    from cli_kit import iris_copy, iris_input

    root = tmp_path / "py38root"
    audit = AuditLog(open_db(tmp_path / "db.sqlite"))
    t = LocalTransport(str(root), python=_python38())
    try:
        assert t.hello()["python"].startswith("3.8.")
        run_to_end(Deploy(t, iris_copy(tmp_path), audit).run())
        run_to_end(Deploy(t, iris_copy(tmp_path, "2.0.0"), audit).run())
        output, _, headers = queries.predict(t, "iris", iris_input().encode())
        assert headers["X-Berth-Version"] == "2.0.0" and output[0]["class"] == "setosa"
        run_to_end(change(t, audit, "rollback", "iris"))
        assert queries.predict(t, "iris", iris_input().encode())[2]["X-Berth-Version"] == "1.0.0"
        venv_cfg = (root / "models/iris/releases/1.0.0/.venv/pyvenv.cfg").read_text()
        assert "3.8." in venv_cfg
    finally:
        stop_all(root)


@pytest.mark.skipif(_python38() is None, reason="no Python 3.8 interpreter on this machine (pyenv 3.8 has one)")
def test_every_agent_module_imports_under_a_real_python38(tmp_path):
    """The grammar check above misses what only fails when a module runs: a 3.9+ module imported
    unguarded (zoneinfo, graphlib), `X | None` in an annotation evaluated at definition time."""
    import shutil
    import subprocess

    shutil.copytree(AGENT, tmp_path / "berth_agent", ignore=shutil.ignore_patterns("__pycache__"))
    names = sorted(p.stem for p in AGENT.glob("*.py") if p.stem not in ("__init__", "__main__"))
    code = ("import importlib, sys\nsys.path.insert(0, sys.argv.pop(1))\nbad = []\nfor n in sys.argv[1:]:\n    try:\n"
            "        importlib.import_module('berth_agent.' + n)\n    except Exception as e:\n"
            "        bad.append('%s: %s: %s' % (n, type(e).__name__, e))\nprint('\\n'.join(bad))\n"
            "sys.exit(1 if bad else 0)\n")
    r = subprocess.run([_python38(), "-I", "-B", "-c", code, str(tmp_path), *names], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(names) > 30
