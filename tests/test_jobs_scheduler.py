"""The scheduler as a real process on an injected clock (BERTH_FAKE_NOW_FILE): a due job runs,
missed runs are caught up once and marked late, a paused job does not run, and hello / status
start the scheduler again when it was found dead."""
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent_kit import call
from app.agent import scheduler
from app.agent.layout import Root
from jobs_kit import cleanup, FakeClock, add_dir_job, deploy_batch_model, rows, write_csv

T0 = datetime(2026, 3, 2, 0, 30, tzinfo=timezone.utc)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    yield r
    cleanup(r)


@pytest.fixture
def clock(tmp_path, monkeypatch):
    return FakeClock(tmp_path / "now.txt", monkeypatch, T0)


def runs(root, job="hourly"):
    result, error, _ = call(root, "job_runs", name=job, limit=100)
    assert error is None, error
    return result["runs"]


def wait_for(predicate, timeout=30.0, what="it"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def ended(root, n, job="hourly"):
    return lambda: (lambda rs: rs if len(rs) >= n and all(r["state"] != "running" for r in rs) else None)(runs(root, job))


def test_due_run_then_missed_runs_caught_up_once_and_marked_late(root, tmp_path, clock):
    deploy_batch_model(root, tmp_path)
    inbox, out = tmp_path / "inbox", tmp_path / "out.db"
    result, error, _ = add_dir_job(root, inbox, out)
    assert error is None, error
    assert result["job"]["next_run"] == "2026-03-02T01:00:00Z"
    first = result["scheduler"]["pid"]
    assert scheduler.alive(Root(str(root))) == first

    write_csv(inbox / "a.csv", [{"x": 1}])
    clock.set(datetime(2026, 3, 2, 1, 0, 5, tzinfo=timezone.utc))  # due: on time
    [run] = wait_for(ended(root, 1), what="the 01:00 run")
    assert (run["state"], run["late"], run["rows_out"], run["due"]) == ("ok", False, 1, "2026-03-02T01:00:00Z")
    assert call(root, "job_list")[0]["jobs"][0]["next_run"] == "2026-03-02T02:00:00Z"

    os.kill(first, signal.SIGKILL)  # the scheduler dies; four slots pass (02:00 .. 05:00)
    wait_for(lambda: scheduler.alive(Root(str(root))) is None, what="the scheduler's death")
    clock.set(datetime(2026, 3, 2, 5, 20, tzinfo=timezone.utc))
    listed = call(root, "job_list")[0]
    assert listed["jobs"][0]["late"] is True and listed["scheduler"]["pid"] is None  # late, seen as such
    write_csv(inbox / "b.csv", [{"x": 2}, {"x": 3}])

    _result, error, _ = call(root, "hello")  # Berth connects: the dead scheduler is started again
    assert error is None, error
    second = scheduler.alive(Root(str(root)))
    assert second and second != first
    rs = wait_for(ended(root, 2), what="the catch-up run")
    time.sleep(2 * scheduler.MAX_SLEEP_S + 0.5)  # a second catch-up would have started by now
    rs = runs(root)
    assert len(rs) == 2, rs
    late = rs[0]
    assert (late["state"], late["late"], late["due"], late["rows_out"]) == ("ok", True, "2026-03-02T02:00:00Z", 2)
    job = call(root, "job_list")[0]["jobs"][0]
    assert (job["next_run"], job["late"], job["last_state"]) == ("2026-03-02T06:00:00Z", True, "ok")
    assert rows(out, "SELECT count(*) FROM scores") == [(3,)]


def test_a_paused_job_does_not_run_and_resumes_from_the_next_slot(root, tmp_path, clock):
    deploy_batch_model(root, tmp_path)
    assert add_dir_job(root, tmp_path / "inbox", tmp_path / "out.db")[1] is None
    assert call(root, "job_pause", name="hourly")[1] is None
    clock.set(datetime(2026, 3, 2, 3, 0, 10, tzinfo=timezone.utc))
    time.sleep(2 * scheduler.MAX_SLEEP_S + 0.5)
    assert runs(root) == []
    job = call(root, "job_resume", name="hourly")[0]["job"]
    assert (job["paused"], job["next_run"], job["late"]) == (False, "2026-03-02T04:00:00Z", False)
    time.sleep(scheduler.MAX_SLEEP_S + 0.5)
    assert runs(root) == []  # the slots while paused are not caught up


def test_status_starts_a_dead_scheduler_and_lists_failing_jobs(root, tmp_path, clock):
    deploy_batch_model(root, tmp_path)
    out = tmp_path / "out.db"
    assert add_dir_job(root, tmp_path / "inbox", out)[1] is None
    pid = scheduler.alive(Root(str(root)))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: scheduler.alive(Root(str(root))) is None, what="the scheduler's death")
    out.write_bytes(b"garbage, not sqlite" * 50)  # the output became unusable: the next run fails
    status, error, _ = call(root, "status")
    assert error is None, error
    again = scheduler.alive(Root(str(root)))
    assert again and again != pid
    assert status["jobs"] == [{"name": "hourly", "model": "scorer", "late": False, "failing": False, "paused": False,
                               "last_state": None}]
    assert status["scheduler"]["pid"] == again and status["scheduler"]["reboot"] in ("systemd", "crontab", "none")
    clock.set(datetime(2026, 3, 2, 1, 0, 1, tzinfo=timezone.utc))
    [run] = wait_for(ended(root, 1), what="the failing run")
    assert run["state"] == "failed" and "not a SQLite database" in run["detail"]
    assert call(root, "status")[0]["jobs"][0]["failing"] is True


def test_a_scheduler_of_another_agent_is_replaced_by_this_one(root, tmp_path, clock):
    """After Berth installs a new agent, the next hello restarts the scheduler with the new code."""
    import json

    deploy_batch_model(root, tmp_path)
    assert add_dir_job(root, tmp_path / "inbox", tmp_path / "out.db")[1] is None
    r = Root(str(root))
    pid = scheduler.alive(r)
    pid_file = scheduler.files(r)[0]
    record = json.loads(Path(pid_file).read_text())
    record["agent"] = "/srv/berth/.berth/agent/0123456789abcdef"
    with open(pid_file, "w") as f:
        json.dump(record, f)
    assert call(root, "hello")[1] is None
    again = scheduler.alive(r)
    assert again and again != pid
    assert "runs another agent's code" in Path(scheduler.files(r)[2]).read_text()


def test_a_broken_job_does_not_stop_the_others(root, tmp_path, clock):
    import json

    deploy_batch_model(root, tmp_path)
    assert add_dir_job(root, tmp_path / "in1", tmp_path / "out1.db", name="broken")[1] is None
    assert add_dir_job(root, tmp_path / "in2", tmp_path / "out2.db", name="fine")[1] is None
    definition = root / "jobs" / "broken" / "job.json"
    job = json.loads(definition.read_text())
    job["schedule"] = {"every": "every now and then"}  # edited by hand on the server
    definition.write_text(json.dumps(job))
    pid = scheduler.alive(Root(str(root)))
    clock.set(datetime(2026, 3, 2, 1, 0, 2, tzinfo=timezone.utc))
    [run] = wait_for(ended(root, 1, job="fine"), what="the other job's run")
    assert run["state"] == "ok"
    assert scheduler.alive(Root(str(root))) == pid
    log = Path(scheduler.files(Root(str(root)))[2]).read_text()
    assert log.count("job broken: ScheduleError: --every: 'every now and then' is not an interval") == 1  # said once, not every tick
    broken = {j["name"]: j for j in call(root, "job_list")[0]["jobs"]}["broken"]
    assert broken["failing"] is True and broken["schedule"].startswith("unreadable: --every: 'every now and then' is not an interval")
    assert broken["next_run"] is None


def test_a_scheduler_that_only_watches_runners_loads_neither_jobs_nor_alerts():
    """Every first deploy starts one (issue 23: its start was ~20% of a group deploy's CPU): the job
    machinery and the alert evaluator (http.client, ssl, email) load once the root has a job or a rule."""
    import subprocess
    import sys

    probe = ("import sys; import app.agent.scheduler, app.agent.watchdog; "
             "print(' '.join(m for m in ('http.client', 'ssl', 'email', 'argparse', 'csv', 'app.agent.jobrun', "
             "'app.agent.schedule', 'app.agent.alerteval', 'app.agent.sampler') if m in sys.modules))")
    source = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-S", "-B", "-c", probe], capture_output=True, text=True, timeout=60,
                         cwd=source, check=True)
    assert out.stdout.split() == [], out.stdout
    bad = subprocess.run([sys.executable, "-S", "-B", "-m", "app.agent.scheduler", "--rot", "x"], capture_output=True,
                         text=True, timeout=60, cwd=source)
    assert bad.returncode == 2 and "usage: python3 -m berth_agent.scheduler --root R" in bad.stderr
