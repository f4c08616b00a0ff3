"""Command-line conventions operators expect from any Unix tool, checked on the real `berth`
process: --version, no desktop, a closed pipe, Ctrl-C, wrong usage, passwords, and errors that
say what to do."""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
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


def passwords(keyring) -> dict:
    """The servers' passwords in the keyring (the audit log's anchor key lives there too)."""
    return {k: v for k, v in keyring.passwords.items() if k[1].startswith("password:")}


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_says_what_to_check(capsys, memory_keyring, monkeypatch):
    import io

    from cli_kit import berth

    port = closed_port()
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    r = berth(capsys, "server", "add", "box", "--host", "127.0.0.1", "--port", port, "--user", "u",
              "--auth", "password", "--password-stdin")
    assert r.code == 1, r
    assert f"cannot reach 127.0.0.1:{port}: Connection refused; is sshd running and listening on port {port}" in r.err
    assert f"nc -vz 127.0.0.1 {port}" in r.err and f"ssh -p {port} u@127.0.0.1" in r.err
    assert passwords(memory_keyring) == {}  # a failed add keeps no password


def test_password_from_stdin_goes_to_keyring_and_leaves_with_the_server(capsys, sshd, memory_keyring, monkeypatch,
                                                                         tmp_path):
    import io

    from cli_kit import berth

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\n"))
    r = berth(capsys, "server", "add", "box", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
              "--key", sshd.key_path, "--auth", "key,password", "--password-stdin", "--root", tmp_path / "r",
              "--accept-host-key", sshd.fingerprint)
    assert r.code == 0 and "added box" in r.out, r
    assert passwords(memory_keyring) == {("berth", "password:box"): "s3cret pass"}
    assert "s3cret" not in r.out + r.err
    from app.store.db import open_db

    db = open_db()
    try:
        tables = {t: db.execute(f"select * from [{t}]").fetchall() for t in db.table_names()}
        assert not [t for t, rows in tables.items() if "s3cret" in json_dump(rows)]
    finally:
        db.close()
    r = berth(capsys, "server", "remove", "box")
    assert r.code == 0 and passwords(memory_keyring) == {}, r


def json_dump(rows) -> str:
    import json

    return json.dumps(list(rows), default=str)


def test_no_secure_keyring_is_said_before_adding():
    """The child `berth` has keyring's fail backend (tests/conftest.py): nothing can be stored."""
    r = run_berth("server", "add", "box", "--host", "127.0.0.1", "--port", closed_port(), "--auth", "password",
                  "--password-stdin", input="pw\n")
    assert r.returncode == 1 and "no secure keyring" in r.stderr and "nothing was saved" in r.stderr, r
    assert "added" not in r.stdout
    assert [s["name"] for s in json.loads(run_berth("server", "list", "--json").stdout)] == ["local"]


def add_box(capsys, sshd, tmp_path):
    from cli_kit import berth

    return berth(capsys, "server", "add", "box", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
                 "--key", sshd.key_path, "--root", tmp_path / "r", "--accept-host-key", sshd.fingerprint)


def test_login_failure_names_the_cli_way(capsys, sshd, tmp_path, monkeypatch, memory_keyring):
    import io

    from cli_kit import berth

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    r = berth(capsys, "server", "add", "box", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
              "--key", other, "--accept-host-key", sshd.fingerprint)
    assert r.code == 1 and "could not log in" in r.err, r
    assert "server's settings" not in r.err and "--key FILE" in r.err and "--password-stdin" in r.err
    assert add_box(capsys, sshd, tmp_path).code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    r = berth(capsys, "server", "password", "box", "--password-stdin")
    assert r.code == 1 and "stdin gave no password" in r.err, r
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    r = berth(capsys, "server", "password", "box", "--password-stdin")
    assert r.code == 0 and passwords(memory_keyring) == {("berth", "password:box"): "pw"}, r


def test_missing_password_names_the_cli_way_and_the_console_keeps_its_own():
    from app.cli import _for_cli
    from app.remote.errors import AuthFailed
    from app.remote.sshauth import NO_PASSWORD

    summary = f"could not log in to h:22 as u; tried {NO_PASSWORD} box"
    e = AuthFailed(summary + " (enter the password in the server's settings)", summary, True)
    assert "server's settings" in str(e)  # what the console shows
    line = _for_cli(e, type("Args", (), {"name": "box"})())
    assert "server's settings" not in line and "berth server password box" in line


def test_an_exception_without_text_still_gives_a_reason():
    import inspect

    import app.remote.ssh
    import app.remote.sshauth

    for module in (app.remote.ssh, app.remote.sshauth):
        assert "{e or type(e).__name__}" not in inspect.getsource(module)  # an exception object is always true


def test_a_model_not_there_names_those_that_are(capsys, tmp_path, stop_local_runners):
    from cli_kit import berth, iris_copy, iris_input

    r = berth(capsys, "predict", "iris", "--server", "local", "--input", iris_input())
    assert r.code == 1 and "nothing is deployed on local yet" in r.err and "berth deploy" in r.err, r
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    for argv in (["predict", "irsi", "--server", "local", "--input", iris_input()],
                 ["rollback", "irsi", "--server", "local"], ["stop", "irsi", "--server", "local"],
                 ["start", "irsi", "--server", "local"], ["releases", "irsi", "--server", "local"]):
        r = berth(capsys, *argv)
        assert r.code == 1 and r.err.startswith("berth: irsi ") and r.err.count("\n") == 1, (argv, r)
        assert r.err.endswith(" (deployed there: iris); did you mean iris?\n"), (argv, r)
    r = berth(capsys, "stop", "wien", "--server", "local")
    assert r.code == 1 and "(deployed there: iris); deploy it first" in r.err and "did you mean" not in r.err, r


def test_a_version_with_other_content_is_refused_before_the_upload(capsys, tmp_path, stop_local_runners):
    from cli_kit import berth, iris_copy

    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    changed = iris_copy(tmp_path)
    (changed / "notes.txt").write_text("other content, same version\n")
    r = berth(capsys, "deploy", changed, "--server", "local")
    assert r.code == 1 and "version 1.0.0 of iris is already on local with different content" in r.err, r
    assert "nothing was sent" in r.err and "Uploading" not in r.err
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0  # the same content: fine


def test_a_requirement_that_does_not_exist_is_named_with_file_and_line(capsys, tmp_path, stop_local_runners,
                                                                     monkeypatch):
    from cli_kit import berth, iris_copy

    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    bundle = iris_copy(tmp_path, version="1.1.0")
    (bundle / "requirements.txt").write_text("# nothing else\n\nno-such-berth-package==1.0  # a typo\n")
    toml = bundle / "berth.toml"
    toml.write_text(toml.read_text().replace('input_example = ', 'requirements = "requirements.txt"\ninput_example = '))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip answers as an index without it would, offline
    r = berth(capsys, "deploy", bundle, "--server", "local")
    assert r.code == 1, r
    said = r.err.splitlines()[-1]
    assert said.startswith("berth: requirements.txt:3: no version of 'no-such-berth-package==1.0' is on the "
                           "package index"), r
    assert "the release that was current still serves" in said and "ERROR:" not in said
    status = berth(capsys, "status", "--server", "local", "--json").json()
    assert [(s["version"], s["state"]) for s in status] == [("1.0.0", "running")]
    r = berth(capsys, "-v", "deploy", bundle, "--server", "local")
    assert r.code == 1 and "    | ERROR: No matching distribution found for no-such-berth-package==1.0" in r.err, r


@pytest.mark.skipif(not shutil.which("script"), reason="needs util-linux's script(1) for a terminal")
def test_auth_password_asks_on_a_terminal():
    """Through script(1), the child has a real terminal (getpass reads /dev/tty); its keyring is the
    tests' memory keyring, so the password is taken and the (closed) port is what fails."""
    port = closed_port()
    env = berth_env(PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}", PYTHON_KEYRING_BACKEND="conftest.MemoryKeyring")
    cmd = f"{shlex.quote(sys.executable)} -m app server add box --host 127.0.0.1 --port {port} --auth password"
    p = subprocess.Popen(["script", "-qec", cmd, os.devnull], env=env, cwd=REPO, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    try:
        while b"SSH password for box: " not in out:
            chunk = os.read(p.stdout.fileno(), 4096)
            assert chunk, out
            out += chunk
        p.stdin.write(b"typed-secret\n")
        p.stdin.close()
        out += p.stdout.read()
        assert p.wait(30) == 1
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        if not p.stdin.closed:
            p.stdin.close()
    text = out.decode()
    assert f"cannot reach 127.0.0.1:{port}" in text and "typed-secret" not in text, text
