"""Faults, tested for real: a server in its own network namespace (tests/netfaults.py FaultyHost),
reached over a real veth link with real OpenSSH, and made to misbehave the ways this kernel allows
without netem: added latency (tests/delay_proxy.py), random packet loss (nftables), a bandwidth
limit (tc tbf), a link that goes down, killed sshd sessions, a killed agent, a full disk.

Every deploy here is the real one (Workspace, ServerConfig, Deploy, the agent over SSH); nothing
is mocked. Each test removes what it made (namespace, veth, mounts, processes) even when it fails.
"""
import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from agent_kit import stop_all
from app.deploy import queries
from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.deploy.errors import OperationFailed
from app.store.servers import ServerConfig
from app.workspace import Workspace
from cli_kit import iris_copy, iris_input
from delay_proxy import DelayProxy
from disk_kit import MountFailed, mount_tmpfs, unmount
from netfaults import FaultyHost, missing_tools, unavailable_reason
from sshd import require_sshd

pytestmark = pytest.mark.ssh

MB = 1024 * 1024
BIG_MB = 50
KEEPALIVE = 2.0  # s; a dead link is noticed after 3 unanswered intervals (TCP_USER_TIMEOUT)


# --- fixtures and helpers --------------------------------------------------------------------------

@pytest.fixture
def make_host(tmp_path):
    """make_host() -> a started FaultyHost; all closed after the test (namespace, veth, processes)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no network namespaces here, so no faulty network: {reason}")
    missing = missing_tools()
    if missing:
        pytest.fail(f"the network fault tests need {', '.join(missing)}", pytrace=False)
    require_sshd()
    hosts = []

    def make() -> FaultyHost:
        host = FaultyHost(tmp_path / f"host{len(hosts)}")
        hosts.append(host)
        return host.start()

    yield make
    for host in hosts:
        host.close()


@pytest.fixture
def root(tmp_path):
    """The server's Berth root; every runner under it is stopped after the test."""
    path = tmp_path / "root"
    path.mkdir()
    yield path
    stop_all(path)


def add_server(ws: Workspace, host: FaultyHost, root: Path, name="box", address=None, port=None, **settings):
    ws.add_server(ServerConfig(name=name, host=address or host.ip, port=port or host.port, user=host.sshd.user,
                               key_path=str(host.sshd.key_path), root=str(root), **settings),
                  host.sshd.fingerprint)


def big_bundle(tmp_path: Path, version: str, mb: int = BIG_MB) -> Path:
    folder = iris_copy(tmp_path, version)
    with open(folder / "weights.bin", "wb") as f:
        for _ in range(mb // 10):
            f.write(os.urandom(10 * MB))
        f.write(os.urandom((mb % 10) * MB))
    return folder


def deploy(ws: Workspace, folder: Path, server="box", on_progress=None):
    with ws.connect(server) as t:
        return run_to_end(Deploy(t, folder, ws.audit).run(), on_progress)


def current_release(root: Path, model="iris") -> str:
    """The one release `current` names, checked whole: a symlink to a folder holding release.json
    (written last, so a half-built release never has it) for that very version."""
    current = root / "models" / model / "current"
    assert current.is_symlink(), f"{current} is not a symlink"
    target = os.readlink(current)
    assert target.startswith("releases/"), target
    folder = current.parent / target
    assert (folder / "release.json").is_file(), (
        f"`current` names {target}, which is not a complete release (contents: "
        f"{sorted(p.name for p in folder.iterdir()) if folder.is_dir() else 'no such folder'})")
    info = json.loads((folder / "release.json").read_text())
    assert info["version"] == Path(target).name, (target, info["version"])
    assert (folder / "bundle" / "berth.toml").is_file()
    return info["version"]


def lock_is_free(root: Path) -> dict:
    """The server lock can be taken now (no process holds it); returns what its file says."""
    fd = os.open(root / ".berth" / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError when held
        fcntl.flock(fd, fcntl.LOCK_UN)
        text = os.pread(fd, 4096, 0).decode()
    finally:
        os.close(fd)
    return json.loads(text) if text.strip() else {}


def journal(root: Path) -> list[dict]:
    path = root / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def predicts(ws: Workspace, server="box") -> str:
    """The version that answers a prediction through the SSH transport."""
    with ws.connect(server) as t:
        output, _, _ = queries.predict(t, "iris", iris_input().encode())
        assert output, output
        return queries.status(t, "iris")[0]["version"]


def agents_in(host: FaultyHost) -> list[psutil.Process]:
    """Berth agents running a change inside the host's namespace (also once their session is gone):
    the connection's agent session, or a one-shot `agent.py deploy`."""
    pids = subprocess.run(["ip", "netns", "pids", host.ns], capture_output=True, text=True).stdout.split()
    found = []
    for pid in pids:
        try:
            p = psutil.Process(int(pid))
            cmd = p.cmdline()
        except (psutil.NoSuchProcess, ValueError):
            continue
        if any(c.endswith("agent.py") for c in cmd) and ("deploy" in cmd or cmd[-1] == "session"):
            found.append(p)
    return found


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g} s")
        time.sleep(0.1)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


# --- 100 ms added latency and 1 % loss -------------------------------------------------------------

def test_deploy_over_100ms_latency_and_1pct_loss_completes_with_steady_progress_and_a_responsive_window(
        qtbot, task_runner, make_host, root, tmp_path):
    from PySide6.QtCore import QTimer

    host = make_host()
    host.loss(1)
    bundle = big_bundle(tmp_path, "1.0.0")
    with DelayProxy(host.port, delay_s=0.05, target_host=host.ip) as proxy:  # +50 ms each way
        ws = Workspace()
        add_server(ws, host, root, name="near")  # installs the agent without the latency (saves ~10 s)
        add_server(ws, host, root, name="far", address="127.0.0.1", port=proxy.port)
        with ws.connect("far") as t:
            t1 = time.monotonic()
            t.agent("hello", {"hashes": []})
            agent_call = time.monotonic() - t1
        assert agent_call > 0.2, f"an agent call took {agent_call:.3f} s: the added latency is not there"

        ticks: list[float] = []
        timer = QTimer()
        timer.setInterval(20)
        timer.timeout.connect(lambda: ticks.append(time.monotonic()))
        timer.start()
        events: list[tuple[float, object]] = []
        task = task_runner.on_server(
            "far", "deploy", lambda ctx: ctx.drive(Deploy(ctx.transport, bundle, ctx.workspace.audit).run()))
        task.progressed.connect(lambda p: events.append((time.monotonic(), p)))
        outcome = []
        task.finished.connect(lambda r: outcome.append(("ok", r)))
        task.failed.connect(lambda e: outcome.append(("failed", e)))
        qtbot.waitUntil(lambda: bool(outcome), timeout=150_000)
        timer.stop()
        assert outcome[0][0] == "ok", getattr(outcome[0][1], "trace", outcome[0][1])

        uploads = [(when, p) for when, p in events if p.step == "upload" and p.rate is not None]
        assert uploads and uploads[-1][1].done == uploads[-1][1].total >= BIG_MB * MB
        sent = [p.done for _, p in uploads]
        assert sent == sorted(sent)
        start, end = uploads[0][0], uploads[-1][0]
        progress_gap = max(gaps([when for when, _ in uploads]), default=0)
        during = [t for t in ticks if start <= t <= end]
        window_gap = max(gaps(during), default=0)
        first = {}
        for when, p in events:
            first.setdefault(p.step, round(when - events[0][0], 1))
        print(f"\nsteps (s after the first event): {first}")
        print(f"{BIG_MB} MB over +100 ms RTT and 1 % loss ({host.dropped()} packets dropped): upload "
              f"{end - start:.1f} s, {len(uploads)} progress events, largest gap {progress_gap:.2f} s; "
              f"GUI timer largest gap {window_gap * 1000:.0f} ms over {len(during)} ticks; agent call {agent_call:.2f} s")
        assert host.dropped() > 0, "no packet was dropped: the loss rules did nothing"
        assert progress_gap < 10, f"the upload progress stood still for {progress_gap:.1f} s"
        assert max(gaps([when for when, _ in events])) < 10, "the deploy's progress stood still for 10 s"
        assert len(during) >= 3 and window_gap < 0.5, f"the window froze for {window_gap * 1000:.0f} ms"
        whole = [t for t in ticks if events[0][0] <= t <= events[-1][0]]
        assert max(gaps(whole)) < 0.5, f"the window froze for {max(gaps(whole)) * 1000:.0f} ms during the deploy"
        assert predicts(ws, "far") == "1.0.0"
        assert current_release(root) == "1.0.0"


# --- the link goes down in the middle of an upload ---------------------------------------------------

def test_link_cut_mid_upload_fails_clearly_in_time_old_release_serves_and_next_deploy_resumes(
        make_host, root, tmp_path):
    host = make_host()
    ws = Workspace()
    add_server(ws, host, root, keepalive=KEEPALIVE)
    deploy(ws, iris_copy(tmp_path))
    with ws.connect("box") as t:
        port = queries.runner_port(t, "iris")
    host.rate(200)  # 25 MB/s: 50 MB take ~2 s, so the cut really is in the middle
    big = big_bundle(tmp_path, "2.0.0")
    cut = {}

    def cut_at_30_percent(p):
        if p.step == "upload" and p.rate is not None and p.done > 0.3 * p.total and not cut:
            host.cut()
            cut.update(at=time.monotonic(), done=p.done, total=p.total)

    with pytest.raises(OperationFailed) as failure:
        deploy(ws, big, on_progress=cut_at_30_percent)
    took = time.monotonic() - cut["at"]
    message = str(failure.value)
    print(f"\nlink cut at {cut['done'] / MB:.1f} of {cut['total'] / MB:.1f} MB; failed {took:.1f} s later: {message}")
    assert took < 3 * KEEPALIVE + 10, f"a cut link took {took:.0f} s to be noticed (keepalive {KEEPALIVE:g} s)"
    assert "lost the connection" in message and "the server was not changed" in message, message
    assert "resumes" in message, message

    # while the link is down, the old release keeps serving on the server itself
    probe = ("import json, urllib.request; r = urllib.request.urlopen(urllib.request.Request("
             f"'http://127.0.0.1:{port}/predict', data=open(0, 'rb').read(), "
             "headers={'Content-Type': 'application/json'}), timeout=10); print(r.status)")
    r = subprocess.run(["ip", "netns", "exec", host.ns, "python3", "-c", probe], input=iris_input().encode(),
                       capture_output=True, timeout=30)
    assert r.stdout.strip() == b"200", r
    assert current_release(root) == "1.0.0"
    assert sorted(p.name for p in (root / "models/iris/releases").iterdir()) == ["1.0.0"]
    failed = ws.audit.list()[0]
    assert (failed["action"], failed["outcome"], failed["version"]) == ("deploy", "failed", "2.0.0")

    host.restore()
    assert predicts(ws) == "1.0.0"  # through the transport, once the link is back
    again = []
    deploy(ws, big, on_progress=again.append)
    resumed = [p.message for p in again if p.step == "upload" and "resuming" in p.message]
    assert resumed, [p.message for p in again if p.step == "upload"][:3]
    to_send = max(p.total for p in again if p.step == "upload" and p.rate is not None)
    assert to_send <= big_bundle_size(big) - cut["done"] + 16 * MB  # what was sent before the cut is kept
    assert current_release(root) == "2.0.0" and predicts(ws) == "2.0.0"
    assert not list((root / ".berth/blobs").glob(".partial-*"))


def big_bundle_size(folder: Path) -> int:
    return (folder / "weights.bin").stat().st_size


# --- sshd killed in the middle of a deploy; the agent killed in the middle of the switch -----------


def runners_alive(root: Path, model="iris") -> dict:
    """version -> pid of every runner whose record names a live process."""
    out = {}
    for f in (root / "models" / model / "run").glob("*.runner.json"):
        rec = json.loads(f.read_text())
        if psutil.pid_exists(int(rec.get("pid") or 0)):
            out[rec["version"]] = rec["pid"]
    return out


@pytest.mark.parametrize("when", ["venv", "switch"])
def test_sshd_killed_mid_deploy_leaves_one_consistent_current_a_free_lock_and_an_audit_trail(
        make_host, root, tmp_path, when):
    host = make_host()
    ws = Workspace()
    add_server(ws, host, root, keepalive=KEEPALIVE)
    deploy(ws, iris_copy(tmp_path))
    killed = {}

    def kill_sshd(p):
        if p.step == when and p.line is None and not killed:
            killed["agents"] = [a.pid for a in agents_in(host)]
            killed["sessions"] = host.kill_sessions()  # every sshd process of the session; the agent lives on

    with pytest.raises(OperationFailed) as failure:
        deploy(ws, iris_copy(tmp_path, "2.0.0"), on_progress=kill_sshd)
    assert killed.get("sessions"), "no sshd session was killed"
    assert len(killed["agents"]) == 1, killed
    print(f"\nsshd sessions killed during {when}: {failure.value}")
    # the orphaned agent notices at its next line of output that Berth is gone; it undoes and ends
    wait_for(lambda: not agents_in(host), 30, "the orphaned agent did not end")

    version = current_release(root)
    holder = lock_is_free(root)
    assert not holder or not psutil.pid_exists(holder.get("pid", 0)), holder
    assert predicts(ws) == version
    assert set(runners_alive(root)) == {version}, runners_alive(root)
    # the audit log says what happened: here (the connection was lost) and on the server (how it ended)
    message = str(failure.value)
    assert "lost the connection" in message and "berth status" in message, message
    ours = ws.audit.list()[0]
    assert (ours["action"], ours["outcome"], ours["version"]) == ("deploy", "lost", "2.0.0"), ours
    server_side = [e for e in journal(root) if e.get("action") == "deploy" and e.get("version") == "2.0.0"]
    if when == "venv":  # before the switch: the agent notices Berth is gone, undoes, and says so
        assert version == "1.0.0"
        assert [e["outcome"] for e in server_side] == ["started", "failed"], server_side
        assert "Berth went away" in server_side[-1]["detail"], server_side[-1]
    else:  # from the switch on, the change completes whatever happens to Berth
        assert [e["outcome"] for e in server_side] == ["started", "ok" if version == "2.0.0" else "failed"], \
            server_side
    with ws.connect("box") as t:
        ws.server_status(t)  # imports the server's journal: its outcome arrives, nothing twice
    ours = [e["outcome"] for e in ws.audit.list(server="box") if e["action"] == "deploy" and e["version"] == "2.0.0"]
    assert sorted(ours) == sorted(["started", "lost", server_side[-1]["outcome"]]), ours

    deploy(ws, iris_copy(tmp_path, "3.0.0"))  # the server is usable again at once
    assert current_release(root) == "3.0.0" and predicts(ws) == "3.0.0"


def test_agent_killed_mid_switch_leaves_one_consistent_current_a_stale_lock_and_a_next_deploy_works(
        make_host, root, tmp_path):
    host = make_host()
    ws = Workspace()
    add_server(ws, host, root, keepalive=KEEPALIVE)
    deploy(ws, iris_copy(tmp_path))
    killed = {}

    def kill_agent(p):
        if p.step == "switch" and not killed:
            agents = agents_in(host)
            assert len(agents) == 1, agents
            agents[0].kill()
            killed["pid"] = agents[0].pid

    with pytest.raises(OperationFailed) as failure:
        deploy(ws, iris_copy(tmp_path, "2.0.0"), on_progress=kill_agent)
    assert killed, "the switch step was never reported"
    print(f"\nagent {killed['pid']} killed during the switch: {failure.value}")

    version = current_release(root)  # either side of the switch, but whole
    assert version in ("1.0.0", "2.0.0")
    assert predicts(ws) == version
    holder = lock_is_free(root)  # the kernel let go of the flock with the process ...
    assert holder.get("pid") == killed["pid"] and not psutil.pid_exists(killed["pid"]), holder  # ... clearly stale
    with ws.connect("box") as t:
        state = t.agent("status", {})["lock"]
    assert state["held"] is False and state["holder_alive"] is False, state
    ours = ws.audit.list()[0]
    assert (ours["action"], ours["outcome"], ours["version"]) == ("deploy", "lost", "2.0.0"), ours
    assert "ended without an answer" in str(failure.value), str(failure.value)
    server_side = [e for e in journal(root) if e.get("action") == "deploy" and e.get("version") == "2.0.0"]
    assert [e["outcome"] for e in server_side] == ["started"], server_side  # no outcome: it was killed
    left = runners_alive(root)

    deploy(ws, iris_copy(tmp_path, "3.0.0"))
    assert current_release(root) == "3.0.0" and predicts(ws) == "3.0.0"
    with ws.connect("box") as t:
        rows = queries.status(t)
    assert [(r["version"], r["state"]) for r in rows] == [("3.0.0", "running")], rows
    after = runners_alive(root)
    assert set(after) == {"3.0.0"}, (left, after)  # the next change stopped what the killed switch left


# --- the server's disk fills during the upload -------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 20 MB tmpfs as the server's root (unmounted after, even when the test fails)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        path = mount_tmpfs(tmp_path / "small-root", "20m")
    except MountFailed as e:
        pytest.fail(f"cannot mount a tmpfs: {e}")
    try:
        yield path
    finally:
        stop_all(path)
        unmount(path)


def test_disk_full_during_upload_says_no_space_removes_partials_and_installs_nothing(
        small_disk, make_host, tmp_path):
    root = small_disk
    host = make_host()  # after the mount: the namespace's sshd sees it
    ws = Workspace()
    add_server(ws, host, root, keepalive=KEEPALIVE)
    deploy(ws, iris_copy(tmp_path))
    big = big_bundle(tmp_path, "2.0.0")
    started = time.monotonic()
    with pytest.raises(OperationFailed) as failure:
        deploy(ws, big)
    message = str(failure.value)
    print(f"\nafter {time.monotonic() - started:.1f} s: {message}")
    assert failure.value.code == "no_space", (failure.value.code, message)
    assert message.startswith("no space left on box: ") and "MB free" in message, message
    assert f"{BIG_MB}.0 MB needed" in message or f"{BIG_MB + 0.0:.1f} MB needed" in message, message
    assert "removed" in message and "not changed" in message, message

    blobs = root / ".berth" / "blobs"
    assert not [p.name for p in blobs.iterdir() if p.name.startswith(".")], list(blobs.iterdir())
    assert not [p for p in blobs.iterdir() if p.stat().st_size >= 10 * MB]
    assert sorted(p.name for p in (root / "models/iris/releases").iterdir()) == ["1.0.0"]
    assert current_release(root) == "1.0.0" and predicts(ws) == "1.0.0"
    assert os.statvfs(root).f_bavail * os.statvfs(root).f_frsize > 15 * MB  # the room came back
    ours = ws.audit.list()[0]
    assert (ours["action"], ours["outcome"], ours["version"]) == ("deploy", "failed", "2.0.0"), ours
    assert "no space left" in ours["detail"]
    holder = lock_is_free(root) if (root / ".berth" / "lock").exists() else {}
    assert not holder or not psutil.pid_exists(holder.get("pid", 0))
