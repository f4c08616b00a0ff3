"""CI's time budget (.ci/run): a test that would start after BERTH_TEST_DEADLINE is skipped, saying
why; before it, it runs. And the files that use what a machine has once take turns."""
import os
import subprocess
import sys
import time
from pathlib import Path

import conftest

ROOT = Path(__file__).resolve().parent.parent


def run_pytest(tmp_path, deadline):
    env = dict(os.environ, BERTH_TEST_DEADLINE=str(deadline), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           "tests/test_ci_budget.py::test_a_plain_test_for_the_budget_to_act_on"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_plain_test_for_the_budget_to_act_on():
    assert True  # the subject of the test below: it passes, unless the budget skips it


def test_after_the_deadline_a_test_is_skipped_and_says_why(tmp_path):
    late = run_pytest(tmp_path, time.time() - 1)
    assert late.returncode == 0 and "1 skipped" in late.stdout, late.stdout + late.stderr
    assert "CI's time budget is spent (BERTH_TEST_DEADLINE)" in late.stdout, late.stdout
    early = run_pytest(tmp_path, time.time() + 600)
    assert early.returncode == 0 and "1 passed" in early.stdout, early.stdout + early.stderr


def test_files_that_add_unix_users_or_run_a_container_engine_run_one_at_a_time():
    tests = ROOT / "tests"
    assert conftest.machine_wide(tests / "test_shared_root.py")  # through tests/perm_kit.py
    assert conftest.machine_wide(tests / "test_container_engines.py")
    assert not conftest.machine_wide(tests / "test_ci_budget.py")
