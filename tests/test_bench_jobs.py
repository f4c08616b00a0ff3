"""bench/jobs.py still runs: one simulated day of an hourly job through the real scheduler on the
injected clock (24 runs, each recorded ok, history and disk reported). Slow: ~20-40 s on 2 cores. And
its PostgreSQL part, small (2,000 rows), when PostgreSQL 15, SQLAlchemy and psycopg are here."""
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


@pytest.mark.slow
def test_the_postgresql_part_writes_every_row_on_both_sides():
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    from pg_kit import BIN
    if not (BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 is not installed ({BIN}/initdb)")
    done = subprocess.run([sys.executable, str(REPO / "bench" / "jobs.py"), "--postgres-only", "--rows", "2000",
                           "--files", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("berth (job) ") for line in lines), done.stdout  # its asserts: 2,000 rows each side
    assert any(line.startswith("pandas to_sql (copy) ") for line in lines), done.stdout
