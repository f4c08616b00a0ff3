"""What one `berth` call costs before it does anything: the modules a read-only command imports.
Over a fleet the CLI is started again and again (scripts, `watch berth status`), and a second of
imports is most of a one-server call. Measured on the real process (`-X importtime`), as a user runs it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# pandas and numpy came with sqlite_utils.db (imported by it whenever installed: app/store/sqlite.py);
# Qt is the console's; keyring (0.1-0.5 s with its backend discovery and the lookup) is the audit
# anchor's, which a read-only command does not need (app/anchoring.py's LaterAnchor)
NEVER = ("sqlite_utils", "pandas", "numpy", "PySide6", "keyring")
# the desktop's own command modules: what only a change or another command group needs
NOT_FOR_READING = ("app.agent.main", "app.agent.operations", "app.agent.scheduler", "app.agent.jobedit",
                   "app.deploy.deploy", "app.deploy.alerts", "app.deploy.jobs", "app.rollout", "app.bundle.check")
BUDGET = 330  # modules, the standard library's included: 910 before, 269 when this was written


def imported(*argv: str) -> list[str]:
    """The modules `berth ARGV` imports, in order (the command must succeed)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "app", *argv], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return [line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")
            and not line.rstrip().endswith("imported package")]


@pytest.fixture
def home_with_a_log(berth_home):
    """A Berth home whose database exists (migrations ran) and whose log is anchored, as any
    operator's is after a first change."""
    from app.workspace import Workspace

    ws = Workspace()
    ws.audit.record("settings.change", "ok", detail="x")
    ws.close()
    return berth_home


@pytest.mark.parametrize("argv", [("status", "--json"), ("monitor", "--once", "--json"), ("server", "list")])
def test_a_read_only_command_imports_no_pandas_qt_keyring_or_change_code(home_with_a_log, argv):
    modules = imported(*argv)
    top = {m.split(".")[0] for m in modules}
    assert not top & set(NEVER), sorted(top & set(NEVER))
    assert not set(modules) & set(NOT_FOR_READING), sorted(set(modules) & set(NOT_FOR_READING))
    assert len(modules) < BUDGET, len(modules)


def test_the_help_imports_none_of_them_either(berth_home):
    modules = imported("--help")
    assert not {m.split(".")[0] for m in modules} & set(NEVER)
    assert len(modules) < BUDGET, len(modules)
