"""After a reboot the scheduler comes back where the server allows it: a crontab @reboot line here
(systemd is not PID 1 on this machine), whose command really starts the scheduler; with neither
systemd --user nor crontab, Berth says so."""
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from agent_kit import call
from app.agent import jobreboot, scheduler
from app.agent.layout import Root
from jobs_kit import add_dir_job, cleanup, deploy_batch_model


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv 'root'"
    yield r
    cleanup(r)


def crontab_lines():
    listed = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return listed.stdout.splitlines() if listed.returncode == 0 else []


@pytest.mark.skipif(not shutil.which("crontab") or jobreboot.systemd_user_works(),
                    reason="needs crontab and no systemd --user (apt-get install -y cron)")
def test_crontab_reboot_line_starts_the_scheduler_and_goes_with_the_last_job(root, tmp_path):
    deploy_batch_model(root, tmp_path)
    result, error, _ = add_dir_job(root, tmp_path / "inbox", tmp_path / "out.db")
    assert error is None, error
    assert result["scheduler"]["reboot"] == "crontab" and "crontab @reboot line" in result["scheduler"]["reboot_detail"]
    assert call(root, "job_list")[0]["scheduler"]["reboot"] == "crontab"
    mine = [l for l in crontab_lines() if l.startswith("@reboot ") and str(root) in l.replace("'\"'\"'", "'")]
    assert len(mine) == 1, crontab_lines()
    add_dir_job(root, tmp_path / "inbox2", tmp_path / "out2.db", name="second")
    assert len([l for l in crontab_lines() if l == mine[0]]) == 1  # once per root, not per job

    pid = scheduler.alive(Root(str(root)))
    os.kill(pid, signal.SIGKILL)  # "the reboot"
    while scheduler.alive(Root(str(root))):
        time.sleep(0.05)
    cron = subprocess.Popen(["sh", "-c", mine[0][len("@reboot "):]], start_new_session=True,  # what cron runs
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not scheduler.alive(Root(str(root))):
        assert time.monotonic() < deadline, "the @reboot line started no scheduler"
        time.sleep(0.1)

    call(root, "job_remove", name="hourly")
    assert mine[0] in crontab_lines()
    call(root, "job_remove", name="second")  # the last one: the line goes
    assert mine[0] not in crontab_lines()
    assert scheduler.alive(Root(str(root)))  # still there: the running model's watchdog keeps it
    assert call(root, "stop", model="scorer")[1] is None  # nothing left to watch: it ends by itself
    assert cron.wait(timeout=15) == 0


def test_neither_systemd_nor_crontab_is_said(root, tmp_path, monkeypatch):
    deploy_batch_model(root, tmp_path)
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))  # no systemctl, no crontab
    result, error, _ = add_dir_job(root, tmp_path / "inbox", tmp_path / "out.db")
    assert error is None, error
    assert result["scheduler"]["reboot"] == "none"
    assert "neither systemd --user nor crontab exists on this server" in result["scheduler"]["reboot_detail"]


@pytest.mark.skipif(not shutil.which("crontab"), reason="needs crontab (apt-get install -y cron)")
def test_roots_writing_the_crontab_at_once_keep_every_line(tmp_path):
    """One user's crontab serves all their roots: writes at the same moment must not lose a line."""
    roots = [Root(str(tmp_path / f"root {i}")) for i in range(12)]
    tags = [jobreboot.MARK + jobreboot._tag(r) for r in roots]
    for r in roots:
        os.makedirs(r.meta)
    start, errors = threading.Barrier(len(roots)), []

    def add(r):
        try:
            start.wait(10)
            jobreboot._crontab(r, ["/bin/true", r.path], {})
        except Exception as e:  # noqa: BLE001 (reported by the assert below)
            errors.append(e)

    threads = [threading.Thread(target=add, args=(r,)) for r in roots]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        lines = crontab_lines()
        assert [tag for tag in tags if not any(l.endswith(tag) for l in lines)] == [], lines
    finally:
        for r, tag in zip(roots, tags):
            with jobreboot._crontab_lock(r):
                jobreboot._remove_line(tag)
    assert not any(l.endswith(tag) for l in crontab_lines() for tag in tags)
