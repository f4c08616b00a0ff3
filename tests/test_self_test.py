"""`berth --self-test` from source: every step passes and is printed, nothing is left running, and
a step that fails is named with exit status 1 (the packaged folder's run: tests/test_package_build.py)."""
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from app.ui.selftest import EXAMPLE, run_self_test

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("keyring", "window", "deploy iris", "console shows it", "predict", "deploy a second version", "roll back",
         "predict after the rollback", "PDF report", "stop")


def leftovers(marker: str) -> list[str]:
    return [" ".join(p.info["cmdline"]) for p in psutil.process_iter(["cmdline"])
            if any(marker in a for a in p.info["cmdline"] or ())]


def test_self_test_from_source_passes_every_step(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path))
    env.pop("QT_QPA_PLATFORM", None)  # it goes offscreen by itself
    env.pop("DISPLAY", None)
    r = subprocess.run([sys.executable, "-m", "app", "--self-test"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("berth --self-test (from source")
    assert [line.split(" (")[0].removeprefix("  ok ") for line in lines[1:-1]] == list(STEPS)
    assert lines[-1] == "self-test passed"
    assert "'setosa' from 1.0.0" in r.stdout and "'setosa' from 1.0.1" in r.stdout
    assert "audit chain intact" in r.stdout
    assert list(tmp_path.glob("berth-self-test-*")) == [], "its temporary home is removed"
    assert leftovers("berth-self-test-") == []


def test_a_failing_step_is_named_and_exits_1(qapp, tmp_path, berth_home):
    broken = tmp_path / "iris"
    shutil.copytree(EXAMPLE, broken)
    toml = (broken / "berth.toml").read_text()
    (broken / "berth.toml").write_text(toml.replace('version = "1.0.0"', 'version = "one point oh"'))
    out = io.StringIO()
    assert run_self_test(out, example=broken) == 1
    lines = out.getvalue().splitlines()
    assert lines[-2].startswith("  FAILED deploy iris: ") and "one point oh" in lines[-2], lines
    assert lines[-1] == "self-test failed at step: deploy iris"
    assert os.environ["BERTH_HOME"] == str(berth_home), "the caller's environment is put back"
    assert not list(berth_home.iterdir()), "nothing written into the operator's Berth home"


def test_a_missing_example_is_named(qapp, tmp_path):
    out = io.StringIO()
    assert run_self_test(out, example=tmp_path / "nowhere") == 1
    assert f"FAILED deploy iris: the example bundle is missing ({tmp_path / 'nowhere'})" in out.getvalue()
