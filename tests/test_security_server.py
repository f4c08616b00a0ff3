"""The server side under attack: a login umask of 000, an agent modified on the server, secrets in the
operator's environment, and a full disk (a real tmpfs, mounted by the test where the machine allows)."""
from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from agent_kit import call, deploy, deploy_request, make_bundle, stop_all
from disk_kit import MountFailed, mount_tmpfs, unmount
from app.audit.chain import verify
from app.agent import journal
from app.agent.layout import AgentError, Root
from app.deploy.changes import run_to_end
from app.remote.local import LocalTransport
from app.workspace import Workspace

LEAKY_MODEL = '''
import os

class Model:
    def predict(self, data):
        return {"env": sorted(os.environ)}
'''


def gone(pid: int) -> bool:
    """Ended (a zombie not yet reaped by this test process counts as ended)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@contextlib.contextmanager
def umask(value):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def deploy_locally(root: Path, bundle: Path) -> dict:
    with LocalTransport(str(root)) as t:
        job = Workspace().deploy(t, bundle)
        run_to_end(job.run(), lambda p: None)
        return job.result


def test_under_a_login_umask_of_000_nothing_berth_writes_is_open_to_other_users(tmp_path, berth_home):
    root = tmp_path / "srv"
    with umask(0):
        deploy_locally(root, make_bundle(tmp_path / "b"))
        with LocalTransport(str(root)) as t:
            model = t.agent("status")["models"][0]
    try:
        from app.agent.health import request

        assert request(model["port"], "POST", "/predict", b'{"x": 1}')[0] == 200  # so the request log has a line
        writable, readable = [], []
        for path in [root, *root.rglob("*")]:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_mode & 0o002 or (path != root and st.st_mode & 0o020):
                writable.append(f"{oct(st.st_mode & 0o777)} {path.relative_to(root)}")
            secret = path.name in ("journal.jsonl", "requests.jsonl") or ".berth/blobs" in str(path)
            if secret and st.st_mode & 0o044:
                readable.append(f"{oct(st.st_mode & 0o777)} {path.relative_to(root)}")
        assert not writable, "writable by other users:\n" + "\n".join(writable[:20])
        assert not readable, "readable by other users:\n" + "\n".join(readable[:20])
    finally:
        stop_all(root)


def installed_local_agent() -> tuple[Workspace, Path]:
    """A workspace and the launcher of the agent installed on its `local` server."""
    ws = Workspace()
    with LocalTransport(ws.servers.get("local").root) as t:
        t.agent("hello")
        return ws, Path(t.ensure_agent())


def status_as_berth_asks(ws: Workspace) -> dict:
    """`status` over a connection opened as `berth status` opens one (its agent check and audit)."""
    transport = ws._open(ws.servers.get("local"), None)
    try:
        return transport.agent("status")
    finally:
        transport.close()


def test_an_agent_modified_on_the_server_is_replaced_audited_and_never_runs(tmp_path, berth_home):
    ws, launcher = installed_local_agent()
    marker = tmp_path / "the-appended-code-ran"
    main = launcher.parent / "berth_agent" / "main.py"
    with open(main, "a") as f:  # what another Unix user did under a umask of 000
        f.write(f"\nopen({str(marker)!r}, 'w').write('pwned')\n")
    answer = status_as_berth_asks(ws)
    assert "models" in answer
    assert not marker.exists(), "the modified agent ran"
    assert "pwned" not in main.read_text(), "the modified file was left in place"
    events = [e for e in ws.audit.list() if e["action"] == "agent.replaced"]
    assert len(events) == 1 and "its content changed" in events[0]["detail"], events


def test_an_agent_replaced_from_another_thread_is_audited_too(tmp_path, berth_home):
    """A shared connection's first command may be the sample stream's, on its own thread: the
    replacement is audited there through a connection of that thread's own (SQLite objects stay in
    the thread that made them), not lost to a ProgrammingError."""
    ws, launcher = installed_local_agent()
    with open(launcher.parent / "berth_agent" / "main.py", "a") as f:
        f.write("\n# changed\n")
    transport = ws._open(ws.servers.get("local"), None)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(transport.agent("status")))
    try:
        worker.start()
        worker.join(60)
    finally:
        transport.close()
    assert outcome and "models" in outcome[0]
    events = [e for e in ws.audit.list() if e["action"] == "agent.replaced"]
    assert len(events) == 1 and "its content changed" in events[0]["detail"], events
    assert verify(ws.db.conn).ok


POISON_PYC = """
import importlib._bootstrap_external as bx, importlib.util, os, sys
src, marker = sys.argv[1], sys.argv[2]
st = os.stat(src)
code = compile(open(src).read() + "\\nopen(%r, 'w').write('pwned')\\n" % marker, src, "exec")
pyc = importlib.util.cache_from_source(src)
os.makedirs(os.path.dirname(pyc), exist_ok=True)
with open(pyc, "wb") as f:  # valid for the source's mtime and size
    f.write(bx._code_to_timestamp_pyc(code, int(st.st_mtime), st.st_size))
"""


def test_bytecode_planted_beside_the_agent_is_refused_like_a_modified_file(tmp_path, berth_home):
    """Only the agent's .py files were hashed, but Python runs a __pycache__/*.pyc that matches a
    source's mtime and size instead of the source: code planted there (by a model: it runs as the
    same user) ran in every later agent command and in every runner, unnoticed."""
    ws, launcher = installed_local_agent()
    marker = tmp_path / "the-planted-bytecode-ran"
    main = launcher.parent / "berth_agent" / "main.py"
    subprocess.run(["python3", "-I", "-c", POISON_PYC, str(main), str(marker)], check=True)
    answer = status_as_berth_asks(ws)
    assert "models" in answer
    assert not marker.exists(), "the planted bytecode ran"
    events = [e for e in ws.audit.list() if e["action"] == "agent.replaced"]
    assert len(events) == 1, events


def test_a_module_dropped_beside_the_agent_package_is_refused(tmp_path, berth_home):
    """The agent's folder is first on sys.path (and is the runners' PYTHONPATH), but only berth_agent/
    was checked: a tempfile.py dropped beside it ran in place of the standard module in every command."""
    ws, launcher = installed_local_agent()
    marker = tmp_path / "the-dropped-module-ran"
    (launcher.parent / "tempfile.py").write_text(
        f"open({str(marker)!r}, 'w').write('pwned')\n"
        "import sys; del sys.modules['tempfile']; sys.path.remove(__import__('os').path.dirname(__file__))\n"
        "import tempfile; sys.modules[__name__] = tempfile\n")
    answer = status_as_berth_asks(ws)
    assert "models" in answer
    assert not marker.exists(), "the module dropped beside the agent ran"
    assert not (launcher.parent / "tempfile.py").exists()
    events = [e for e in ws.audit.list() if e["action"] == "agent.replaced"]
    assert len(events) == 1, events


def test_an_agent_file_writable_by_others_is_refused_even_with_the_right_content(tmp_path, berth_home):
    root = tmp_path / "srv"
    with LocalTransport(str(root)) as t:
        t.agent("hello")
        launcher = Path(t.ensure_agent())
        os.chmod(launcher.parent / "berth_agent" / "journal.py", 0o666)
        t.agent("hello")  # replaced, then answered
    mode = os.stat(launcher.parent / "berth_agent" / "journal.py").st_mode & 0o777
    assert mode == 0o600


def test_a_runner_sees_only_the_allowed_environment_and_what_the_bundle_declares(tmp_path, berth_home, monkeypatch):
    for name in ("AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN"):
        monkeypatch.setenv(name, "fake-secret-value-1234")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    root = tmp_path / "srv"
    bundle = make_bundle(tmp_path / "b", model_src=LEAKY_MODEL,
                         extra_toml='[serve.env]\nOMP_NUM_THREADS = "2"\n')
    deploy_locally(root, bundle)
    try:
        from app.agent.health import request

        with LocalTransport(str(root)) as t:
            port = t.agent("status")["models"][0]["port"]
        status, raw = request(port, "POST", "/predict", b"{}")
        seen = set(json.loads(raw)["env"])
        assert status == 200
        assert not seen & {"AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "SSH_AUTH_SOCK"}, seen
        assert "OMP_NUM_THREADS" in seen and "PATH" in seen
        log = (root / "models/echo/logs/requests.jsonl").read_text()
        assert "fake-secret-value" not in log
    finally:
        stop_all(root)


def test_a_bundle_shipping_venv_py_or_pip_does_not_run_at_deploy_time(tmp_path, monkeypatch):
    """`python -m venv` / `-m pip` ran in the bundle folder, so the bundle's venv.py ran with the agent's
    environment, outside the runner's allow-list and before any entry-point check."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-value-1234")
    root = tmp_path / "srv"
    bundle = make_bundle(tmp_path / "b")
    grab = ("import os\nopen(%r, 'w').write(os.environ.get('AWS_SECRET_ACCESS_KEY', ''))\n"
            % str(tmp_path / "stolen"))
    (bundle / "venv.py").write_text(grab + "raise SystemExit(0)\n")
    (bundle / "pip").mkdir()
    (bundle / "pip" / "__init__.py").write_text(grab)
    (bundle / "pip" / "__main__.py").write_text("raise SystemExit(0)\n")
    (bundle / "requirements.txt").write_text("# nothing to install\n")
    request = deploy_request(root, bundle)
    request["manifest"]["requirements"] = "requirements.txt"
    try:
        result, error, _events = call(root, "deploy", **request)
        assert not (tmp_path / "stolen").exists(), "the bundle's own venv.py or pip ran at deploy time"
        assert error is None, error
    finally:
        stop_all(root)


def test_pip_and_venv_get_an_allow_listed_environment_not_the_agents(tmp_path, monkeypatch):
    """pip builds sdists and local projects (code of the bundle or the index) at deploy time; it got
    the agent's whole environment, on a server the SSH session's with SSH_AUTH_SOCK."""
    import sys

    from app.agent import venv

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-value-1234")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    lines = []
    venv._stream([sys.executable, "-c", "import os; print(' '.join(sorted(os.environ)))"], "install",
                 lambda event, **kw: lines.append(kw.get("line", "")), lambda: False, str(tmp_path))
    seen = set(" ".join(lines).split())
    assert not seen & {"AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK"}, seen
    assert {"PATH", "HTTPS_PROXY", "PIP_NO_INPUT"} <= seen, seen


def test_a_bundle_cannot_declare_the_runners_own_variables(tmp_path):
    from app.bundle import check_path

    bundle = make_bundle(tmp_path / "b", extra_toml='[serve.env]\nPYTHONPATH = "/tmp/evil"\nLD_PRELOAD = "x.so"\n')
    errors = [str(p) for p in check_path(bundle).errors]
    assert len(errors) == 2 and all("is reserved" in e for e in errors), errors


# -- a full disk -----------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs of its own; skipped where this machine cannot mount one."""
    try:
        disk = mount_tmpfs(tmp_path / "disk", "24m", "mode=0700")
    except MountFailed as e:
        pytest.skip(f"cannot mount a tmpfs here ({e}): the full-disk tests need one")
    try:
        yield disk
    finally:
        stop_all(disk / "srv")
        unmount(disk)


def fill(disk: Path) -> Path:
    """Fill the file system to the last byte."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def end_on_a_page(root: Root) -> None:
    """Journal lines until the file ends exactly on a page, so the next byte needs a new block (a
    tmpfs has room for appends in a file's last page even when it is full)."""
    page = os.sysconf("SC_PAGE_SIZE")
    journal.append(root, "note", "ok", {"user": "t"}, detail="x")
    base = len(Path(root.journal).read_text().splitlines()[-1]) + 1 - 1  # the line without its one "x"
    missing = -os.path.getsize(root.journal) % page
    if missing < base + 1:
        missing += page
    journal.append(root, "note", "ok", {"user": "t"}, detail="x" * (missing - base))
    assert os.path.getsize(root.journal) % page == 0


def test_a_journal_line_on_a_full_disk_is_all_or_nothing_and_named(small_disk):
    root = Root(str(small_disk / "srv")).ensure()
    journal.append(root, "deploy", "started", {"user": "t"})
    before = Path(root.journal).read_bytes()
    filler = fill(small_disk)
    with pytest.raises(AgentError) as caught:
        journal.append(root, "deploy", "ok", {"user": "t"}, detail="x" * 20000)
    assert caught.value.code == "no_space" and "disk is full" in str(caught.value)
    assert Path(root.journal).read_bytes() == before, "a cut line was left in the journal"
    filler.unlink()
    journal.append(root, "deploy", "ok", {"user": "t"})
    lines = [json.loads(line) for line in Path(root.journal).read_text().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2] and lines[1]["prev"] == lines[0]["hash"]


def test_a_start_on_a_really_full_disk_names_the_full_disk(small_disk, tmp_path):
    """The journal named a full disk, but a write elsewhere (the runner's log, a record) surfaced as
    "internal: agent error: OSError: [Errno 28]": the rule is now the agent's, for every write."""
    root = small_disk / "srv"
    assert deploy(root, make_bundle(tmp_path / "b"))[1] is None
    assert call(root, "stop", model="echo")[1] is None
    from app.agent import scheduler
    deadline = time.monotonic() + 10  # nothing left to watch: the scheduler ends, and frees its pid file's
    while scheduler.alive(Root(str(root))) and time.monotonic() < deadline:  # page: before the disk is filled
        time.sleep(0.05)
    filler = fill(small_disk)
    try:
        _, error, _ = call(root, "start", model="echo")
    finally:
        filler.unlink()
    assert error["code"] == "no_space" and "disk is full" in error["message"], error
    assert call(root, "status")[0]["models"][0]["state"] == "stopped"


def test_stopping_a_model_works_when_nothing_can_be_written(tmp_path):
    """The journal is pointed at /dev/full (every write: ENOSPC): the stop still stops, and says it
    was not journalled. (On a real full tmpfs the lock's truncation frees a page, so there the
    journal gets its lines: see the test above for what a failed append leaves.)"""
    root = tmp_path / "srv"
    result, error, _ = deploy(root, make_bundle(tmp_path / "b"))
    assert error is None, error
    pid = call(root, "status")[0]["models"][0]["pid"]
    saved = (root / "journal.jsonl").read_bytes()
    (root / "journal.jsonl").unlink()
    (root / "journal.jsonl").symlink_to("/dev/full")
    try:
        result, error, events = call(root, "stop", model="echo")
    finally:
        (root / "journal.jsonl").unlink()
        (root / "journal.jsonl").write_bytes(saved)
    assert error is None, error
    assert "disk is full" in result["detail"] and result["journalled"] is False
    assert any("not journalled" in (e.get("line") or "") for e in events)
    assert gone(pid)
    assert call(root, "status")[0]["models"][0]["state"] == "stopped"
    stop_all(root)


def test_other_changes_on_a_full_disk_fail_with_the_reason(tmp_path):
    root = tmp_path / "srv"
    assert deploy(root, make_bundle(tmp_path / "b"))[1] is None
    (root / "journal.jsonl").unlink()
    (root / "journal.jsonl").symlink_to("/dev/full")
    try:
        _, error, _ = call(root, "start", model="echo")
    finally:
        stop_all(root)
    assert error["code"] == "no_space" and "disk is full" in error["message"]


# -- a `current` removed by hand, and leftovers of a killed deploy ----------------------------------

def test_a_removed_current_link_is_shown_by_status_and_repaired_by_start_or_rollback(tmp_path):
    root = tmp_path / "srv"
    assert deploy(root, make_bundle(tmp_path / "v1", version="1.0.0"))[1] is None
    assert deploy(root, make_bundle(tmp_path / "v2", version="2.0.0"))[1] is None
    try:
        serving = call(root, "status")[0]["models"][0]
        (root / "models/echo/current").unlink()
        seen = call(root, "status")[0]["models"]
        assert len(seen) == 1 and seen[0]["state"] == "unlinked" and seen[0]["version"] == "2.0.0"
        assert seen[0]["pid"] == serving["pid"] and "berth start echo" in seen[0]["detail"]
        result, error, _ = call(root, "start", model="echo")
        assert error is None, error
        now = call(root, "status")[0]["models"][0]
        assert (now["state"], now["version"], now["pid"]) == ("running", "2.0.0", serving["pid"])
        (root / "models/echo/current").unlink()
        _, error, _ = call(root, "rollback", model="echo")
        assert error["code"] == "usage" and "--to VERSION" in error["message"] and "1.0.0, 2.0.0" in error["message"]
        result, error, _ = call(root, "rollback", model="echo", to="1.0.0")
        assert error is None, error
        now = call(root, "status")[0]["models"][0]
        assert (now["state"], now["version"]) == ("running", "1.0.0")
        assert gone(serving["pid"])  # the orphaned 2.0.0 runner was stopped
    finally:
        stop_all(root)


def test_the_unpacked_copy_of_a_killed_deploy_is_removed_by_the_next_berth(tmp_path, monkeypatch):
    from app.bundle import tempdirs

    monkeypatch.setattr(tempdirs.tempfile, "gettempdir", lambda: str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = tmp_path / f"berth-bundle-{dead.pid}-abc123"
    (left / "bundle").mkdir(parents=True)
    (left / "bundle" / "weights.bin").write_bytes(b"x" * 1000)
    alive = tmp_path / f"berth-bundle-{os.getppid()}-def456"
    alive.mkdir()
    fresh = tempdirs.make_temp("bundle")
    assert not left.exists() and alive.exists() and fresh.exists()


# -- models cannot reach into each other -------------------------------------------------------------

def test_models_do_not_share_an_environment_and_an_environment_is_read_only(tmp_path):
    root = tmp_path / "srv"
    assert deploy(root, make_bundle(tmp_path / "a", name="alpha"))[1] is None
    assert deploy(root, make_bundle(tmp_path / "b", name="beta"))[1] is None
    try:
        alpha = (root / "models/alpha/current/.venv").resolve()
        beta = (root / "models/beta/current/.venv").resolve()
        assert alpha != beta, "two models share one environment"
        site = next(alpha.glob("lib/python*/site-packages"))
        with pytest.raises(PermissionError) if os.getuid() != 0 else contextlib.nullcontext():
            (site / "evil.pth").write_text("import os; os.system('touch /tmp/pwned')\n")
        assert not os.stat(site).st_mode & 0o222, "the built environment is still writable"
    finally:
        stop_all(root)


def test_a_release_changed_on_the_server_does_not_start(tmp_path):
    root = tmp_path / "srv"
    assert deploy(root, make_bundle(tmp_path / "v1"))[1] is None
    try:
        model_py = root / "models/echo/current/bundle/model.py"
        os.chmod(model_py, 0o600)  # what a process of the same user can always do
        model_py.write_text("class Model:\n    def predict(self, data):\n        return {'tampered': True}\n")
        call(root, "stop", model="echo")
        _, error, _ = call(root, "start", model="echo")
        assert error["code"] == "release_modified" and "model.py" in error["message"], error
        assert call(root, "status")[0]["models"][0]["state"] != "running"
    finally:
        stop_all(root)
