"""bench/jobs.py still runs: one simulated day of an hourly job through the real scheduler on the
injected clock (24 runs, each recorded ok, history and disk reported). Slow: ~20-40 s on 2 cores."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_one_simulated_day_runs_every_hour_once():
    done = subprocess.run([sys.executable, str(REPO / "bench" / "jobs.py"), "--rows", "0", "--simulate-days", "1"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "24 runs (24 ok; 24 in detail, 0 days rolled up), 120 result rows" in done.stdout, done.stdout
    assert "bounded: yes" in done.stdout and "day 1" in done.stdout
