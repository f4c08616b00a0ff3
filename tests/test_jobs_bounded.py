"""Months unattended stay bounded: run history rolled up into daily totals, done/ files pruned
after their days, the scheduler's log rotated by size."""
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from app.agent import scheduler
from app.agent.jobinputs import DirInput
from app.agent.jobstore import JobDir, roll_up
from app.agent.layout import Root
from jobs_kit import FakeClock


def test_history_keeps_the_last_runs_and_daily_totals(tmp_path):
    root = Root(str(tmp_path))
    jobdir = JobDir(root, "hourly")
    os.makedirs(jobdir.runs)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(250):
        t = start + timedelta(hours=i)
        jobdir.write_run({"run_id": t.strftime("%Y%m%dT%H%M%SZ") + "-%06x" % i, "state": "failed" if i % 10 == 0 else "ok",
                          "rows_in": 3, "rows_out": 2, "errors": 1, "late": i == 5})
    assert roll_up(jobdir, keep=200) == 50
    assert len(jobdir.run_ids()) == 200 and jobdir.run_ids()[0].startswith("20260103T02")
    daily = json.loads(Path(jobdir.daily).read_text())
    assert daily["20260101"] == {"runs": 24, "ok": 21, "failed": 3, "late": 1, "rows_in": 72, "rows_out": 48, "errors": 24}
    assert sum(d["runs"] for d in daily.values()) == 50
    assert roll_up(jobdir, keep=200) == 0


def test_done_files_leave_after_their_days(tmp_path, monkeypatch):
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    clock = FakeClock(tmp_path / "now.txt", monkeypatch, now)
    inbox = tmp_path / "inbox"
    (inbox / "done").mkdir(parents=True)
    (inbox / "failed").mkdir()
    for name, age_days in (("done/old.csv", 31), ("done/new.csv", 1), ("failed/old.txt", 40)):
        p = inbox / name
        p.write_text("x\n1\n")
        t = (now - timedelta(days=age_days)).timestamp()
        os.utime(p, (t, t))
    from app.agent.jobclock import now as clock_now
    source = DirInput({"path": str(inbox), "pattern": "*.csv"}, clock_now)
    assert source.prune_done(30) == 2
    assert sorted(os.listdir(inbox / "done")) == ["new.csv"] and os.listdir(inbox / "failed") == []
    clock.set(now + timedelta(days=30))
    assert source.prune_done(30) == 1


def test_the_scheduler_log_is_rotated_by_size(tmp_path, monkeypatch):
    root = Root(str(tmp_path)).ensure()
    monkeypatch.setattr(scheduler, "LOG_LIMIT", 10_000)
    for i in range(2000):
        scheduler.log(root, "started hourly run %d" % i)
    log = scheduler.files(root)[2]
    assert os.path.getsize(log) <= 10_000 + 100 and os.path.getsize(log + ".1") <= 10_000 + 100
    assert sorted(os.listdir(root.meta)) == ["blobs", "scheduler.log", "scheduler.log.1"]


def test_a_file_renamed_away_while_its_batch_commits_does_not_fail_the_run(tmp_path):
    """The rows are committed with the file's hash: a file gone before the move is simply not moved."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text("x\n1\n")
    (inbox / "b.csv").write_bytes(b"\xff\xfe")
    source = DirInput({"path": str(inbox), "pattern": "*"}, lambda: datetime.now(timezone.utc))

    class Output:
        def is_done(self, mark):
            return False
    batches = source.batches(Output())
    batch = next(batches)
    os.rename(inbox / "a.csv", tmp_path / "a.csv")
    batch.done()
    os.rename(inbox / "b.csv", tmp_path / "b.csv")  # gone between the listing and its reading
    assert list(batches) == [] and source.failed == []
    assert os.listdir(inbox) == ["done"] and (tmp_path / "a.csv").read_text() == "x\n1\n"


def test_a_file_bigger_than_a_batch_may_be_goes_to_failed_unread(tmp_path, monkeypatch):
    from app.agent import jobinputs
    monkeypatch.setattr(jobinputs, "MAX_FILE_BYTES", 2 * 2 ** 20)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "big.jsonl").write_text('{"x": 1}\n' * 300000)  # 2.7 MB
    (inbox / "small.jsonl").write_text('{"x": 1}\n')
    source = DirInput({"path": str(inbox), "pattern": "*"}, lambda: datetime.now(timezone.utc))

    class Output:
        def is_done(self, mark):
            return False
    assert [b.ref for b in source.batches(Output())] == ["small.jsonl"]
    assert source.failed == [("big.jsonl", "2.6 MB, more than the 2 MB a file (one batch, read into memory) may be: "
                                           "split it")]
    assert (inbox / "failed" / "big.jsonl").exists()
