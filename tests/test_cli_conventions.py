"""Command-line conventions operators expect from any Unix tool, checked on the real `berth`
process: --version, no desktop, a closed pipe, Ctrl-C, wrong usage, passwords, and errors that
say what to do."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def berth_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def run_berth(*argv, env=None, input=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *map(str, argv)], env=env or berth_env(), cwd=REPO,
                          input=input, capture_output=True, text=True, timeout=timeout)


def project_version() -> str:
    import tomllib

    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    r = run_berth(flag)
    assert (r.returncode, r.stdout.strip()) == (0, f"berth {project_version()}"), r


def test_no_display_says_what_to_run_instead():
    env = berth_env()
    env.pop("QT_QPA_PLATFORM", None)
    r = run_berth(env=env)
    assert r.returncode == 1, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "desktop session" in lines[0], r
    assert "berth --help" in lines[0] and "berth demo" in lines[0]
    assert "Reinstalling" not in r.stderr and r.stdout == ""


def test_closed_pipe_ends_quietly(berth_home):
    from app.audit.log import AuditLog
    from app.store.db import open_db

    db = open_db()
    log = AuditLog(db)
    for i in range(600):  # well over a pipe's 64 KB of JSON
        log.record("deploy", "ok", server="box", model="iris", version=f"1.{i}.0", actor="alice@laptop",
                   detail="x" * 200)
    db.close()
    p = subprocess.Popen([sys.executable, "-m", "app", "audit", "list", "--json", "--limit", "1000"],
                         env=berth_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.read(100).startswith(b"[")  # `| head -c 100`
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    code = p.wait(60)
    assert err == "" and code == 141, (code, err)


def test_ctrl_c_ends_monitor_with_130():
    p = subprocess.Popen([sys.executable, "-m", "app", "monitor", "--server", "local", "--json"],
                         env=berth_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert p.stdout.readline().startswith("{")  # it is live
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 130
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


@pytest.mark.parametrize("argv", [["audit", "list", "--since", "bogus"], ["audit", "export", "-o", "x.csv", "--until", "soon"]])
def test_wrong_time_is_wrong_usage(argv):
    r = run_berth(*argv)
    assert r.returncode == 2 and "not a time: " in r.stderr and "usage:" in r.stderr, r


def test_server_list_shows_no_port_for_local(capsys):
    from cli_kit import berth

    r = berth(capsys, "server", "list")
    header, local = r.out.splitlines()[:2]
    port_at = header.index("PORT")
    assert local.startswith("local") and local[port_at:port_at + 4].strip() == "", r
    assert berth(capsys, "server", "list", "--json").json()[0]["port"] is None


def test_progress_one_line_per_step_in_order():
    """The agent's events of a release with requirements: venv, install, venv (its end)."""
    import io

    from app.cli.output import ProgressPrinter
    from app.deploy.progress import from_agent

    out = io.StringIO()
    printer = ProgressPrinter(stream=out)
    for event in [{"step": "assemble", "total": 7}, {"step": "venv"}, {"step": "install"},
                  {"event": "log", "step": "install", "line": "Collecting numpy"}, {"step": "venv", "reused": False},
                  {"step": "start", "version": "1.0.0"}, {"step": "health", "version": "1.0.0", "port": 5},
                  {"step": "start", "version": "0.9.0"}]:
        printer(from_agent({"event": "step", **event}))
    assert out.getvalue().splitlines() == [
        "  Assembling the release: 7 files", "  Creating the virtualenv", "  Installing requirements",
        "  Starting the runner: 1.0.0", "  Health check: 1.0.0 answering on port 5", "  Starting the runner: 0.9.0"]


def test_deploy_prints_each_step_once(capsys, tmp_path, stop_local_runners):
    from cli_kit import berth, iris_copy

    r = berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local")
    assert r.code == 0, r
    steps = [line for line in r.err.splitlines() if not line.startswith("  Uploading")]
    assert len(steps) == len(set(steps)) and "  Creating the virtualenv" in steps, r
