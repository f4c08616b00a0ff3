"""Jobs on a real agent root: a deployed batch model, an inbox, a SQLite output, an injected clock."""
import json
import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from agent_kit import call, deploy, make_bundle

# fails on a row whose x is negative; slow when the row says so (to kill a run mid-batch)
BATCH_MODEL = '''
import time


class Model:
    def predict(self, row):
        if row.get("x", 0) < 0:
            raise ValueError("x must not be negative")
        time.sleep(row.get("sleep", 0))
        return {{"y": row["x"] * 2, "label": "v{version}"}}

    def predict_batch(self, rows):
        return [self.predict(r) for r in rows]
'''


def deploy_batch_model(root: Path, tmp_path: Path, version="1.0.0", name="scorer"):
    folder = make_bundle(tmp_path / f"bundle-{name}-{version}", name=name, version=version,
                         model_src=BATCH_MODEL.format(version=version))
    result, error, _ = deploy(root, folder)
    assert error is None, error
    return result


def add_dir_job(root: Path, inbox: Path, out_db: Path, name="hourly", model="scorer", every="1h", **extra):
    inbox.mkdir(parents=True, exist_ok=True)
    req = dict(name=name, model=model, schedule={"every": every}, tz="UTC",
               input={"kind": "dir", "path": str(inbox), "pattern": "*.csv"},
               output={"url": f"sqlite:///{out_db}", "table": "scores"}, version=None)
    req.update(extra)
    return call(root, "job_add", **req)


def write_csv(path: Path, rows: list[dict]):
    keys = list(rows[0])
    path.write_text(",".join(keys) + "\n" + "".join(",".join(str(r[k]) for k in keys) + "\n" for r in rows))


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def wait_run(root: Path, job: str, run_id: str, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result, error, _ = call(root, "job_runs", name=job, limit=50)
        assert error is None, error
        run = {r["run_id"]: r for r in result["runs"]}.get(run_id)
        if run and run["state"] != "running":
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} of {job} did not end in {timeout}s")


class FakeClock:
    """The injected clock (app/agent/jobclock.py): a file holding an ISO time."""

    def __init__(self, path: Path, monkeypatch, start: datetime):
        self.path = path
        monkeypatch.setenv("BERTH_FAKE_NOW_FILE", str(path))
        self.set(start)

    def set(self, t: datetime):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(t.astimezone(timezone.utc).isoformat())
        os.replace(tmp, self.path)


def journal_actions(root: Path) -> list[tuple[str, str]]:
    path = root / "journal.jsonl"
    if not path.exists():
        return []
    return [(e["action"], e["outcome"]) for e in map(json.loads, path.read_text().splitlines())]


def cleanup(root: Path):
    """Test teardown: the scheduler stopped, its reboot hook (a crontab line) removed, runners stopped."""
    from agent_kit import stop_all
    from app.agent import jobreboot, scheduler
    from app.agent.layout import Root

    r = Root(str(root))
    scheduler.stop(r)
    if os.path.isdir(r.meta):
        jobreboot.remove(r)
    stop_all(root)
