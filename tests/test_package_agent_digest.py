"""A packaged Berth whose agent files were edited in its folder refuses to install that agent (its
digest is computed from those files, so servers would accept it as a new version): the build's digest
rides in `berth_build` (packaging/build_info.py), checked by app/remote/agent_digest_check.py. Run on
a copy of the source tree with the module the build writes, as the package runs."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import build_info  # noqa: E402

CONNECT = "from app.workspace import Workspace\nt = Workspace().connect('local')\nprint('agent', t.hello()['agent_version'])\n"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A copy of app/ as the package has it, and the berth_build module of the checkout's agent."""
    base = tmp_path_factory.mktemp("package")
    shutil.copytree(ROOT / "app", base / "src" / "app", ignore=shutil.ignore_patterns("__pycache__"))
    build_info.write(base / "generated", ROOT / "app" / "agent")
    return base


def connect(base: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{base / 'generated'}:{base / 'src'}", BERTH_HOME=str(tmp_path / "home"),
               PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-c", CONNECT], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)


def test_the_build_digest_is_the_agents():
    from app.agent.queries import agent_digest

    assert build_info.agent_digest(ROOT / "app" / "agent") == agent_digest()


def test_an_agent_edited_in_the_package_is_refused_and_said(installed, tmp_path):
    ok = connect(installed, tmp_path)
    assert ok.returncode == 0 and "agent " in ok.stdout, ok.stderr  # the same files: connects as usual
    planted = installed / "src" / "app" / "agent" / "queries.py"
    original = planted.read_bytes()
    planted.write_bytes(original + b"\nimport os  # planted\n")
    try:
        (tmp_path / "again").mkdir()
        r = connect(installed, tmp_path / "again")
    finally:
        planted.write_bytes(original)
    assert r.returncode != 0
    assert "differs from the one it was built with" in r.stderr and "reinstall Berth" in r.stderr, r.stderr
    assert not list((tmp_path / "again" / "home" / "local" / ".berth" / "agent").glob("*")), "nothing installed"
