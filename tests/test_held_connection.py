"""A CLI call's connection held for the next one (app/remote/held.py, keeper.py), against a real
OpenSSH server on loopback: the second call logs in no more, a keeper that is gone, hung or idle
is replaced or ends, a changed host key is still refused, another Unix user is refused."""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from agent_kit import stop_all
from app.remote import held
from app.remote.held_key import socket_dir
from app.store.servers import ServerConfig
from app.workspace import Workspace
from cli_kit import berth
from held_kit import add, logins

REPO = Path(__file__).resolve().parent.parent



def agent_execs(srv) -> int:
    """Exec channels sshd started, each a new process there (LogLevel VERBOSE: `Starting session: command`)."""
    return srv.log_path.read_text().count("Starting session: command")




@pytest.fixture
def box(sshd, tmp_path, held_on):
    root = tmp_path / "root"
    add(sshd, root)
    yield sshd, root
    stop_all(root)


def keepers_of(capsys, name="box"):
    return [k for k in berth(capsys, "server", "connections", "--json").json() if k["server"] == name]


def wait_gone(pid, within=10.0):
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_second_call_reuses_the_keeper(capsys, box):
    srv, _root = box
    before = logins(srv)
    first = berth(capsys, "status", "--server", "box", "--json")
    assert first.code == 0, first
    [keeper] = keepers_of(capsys)
    assert logins(srv) == before + 1  # the keeper's login
    for _ in range(2):
        again = berth(capsys, "status", "--server", "box", "--json")
        assert again.code == 0 and again.json() == first.json(), again
    assert logins(srv) == before + 1  # no new login: the same connection
    [same] = keepers_of(capsys)
    assert same["pid"] == keeper["pid"] and same["calls"] >= 3
    assert berth(capsys, "whoami", "--server", "box").code == 0
    assert berth(capsys, "audit", "sync", "--server", "box").code == 0
    execs = agent_execs(srv)
    r = berth(capsys, "monitor", "--once", "--server", "box", "--json")
    assert r.code == 0 and r.json()[0]["server"] == "box" and r.json()[0]["models"] == {}, r
    assert logins(srv) == before + 1
    assert execs >= 1 and agent_execs(srv) == execs  # the held agent session sampled: no new agent process
    # the Remote activity log has each call, as a direct connection writes it
    rows = berth(capsys, "server", "activity", "box").out
    assert rows.count("status") >= 3 and "sample" in rows


def test_off_means_a_connection_per_call(capsys, box, monkeypatch):
    srv, _root = box
    monkeypatch.setenv("BERTH_SSH_PERSIST", "0")
    before = logins(srv)
    assert berth(capsys, "status", "--server", "box").code == 0
    assert berth(capsys, "status", "--server", "box").code == 0
    assert logins(srv) == before + 2 and keepers_of(capsys) == []


def test_the_setting_is_checked_and_used(capsys, box, monkeypatch):
    r = berth(capsys, "settings", "set", "ssh_persist", "ten minutes")
    assert r.code != 0 and "whole number of seconds" in r.err, r
    monkeypatch.delenv("BERTH_SSH_PERSIST")
    assert berth(capsys, "settings", "set", "ssh_persist", "0").code == 0
    assert berth(capsys, "status", "--server", "box").code == 0 and keepers_of(capsys) == []


def test_disconnect_one_or_all(capsys, box):
    assert berth(capsys, "status", "--server", "box").code == 0
    [keeper] = keepers_of(capsys)
    r = berth(capsys, "server", "disconnect", "box")
    assert r.code == 0 and f"keeper {keeper['pid']} exits" in r.out, r
    assert wait_gone(keeper["pid"]) and keepers_of(capsys) == []
    assert "no held connection" in berth(capsys, "server", "disconnect", "--all").out
    r = berth(capsys, "server", "disconnect")
    assert r.code != 0 and "--all" in r.err
    assert berth(capsys, "server", "disconnect", "nosuch").code != 0


def test_idle_keeper_exits(capsys, box, monkeypatch):
    monkeypatch.setenv("BERTH_SSH_PERSIST", "1")
    assert berth(capsys, "status", "--server", "box").code == 0
    [keeper] = keepers_of(capsys)
    assert keeper["idle_limit_s"] == 1
    assert wait_gone(keeper["pid"], within=8)
    assert keepers_of(capsys) == []


def test_one_keeper_process_holds_every_connection(capsys, box, sshd_factory, tmp_path):
    other = sshd_factory()
    add(other, tmp_path / "root2", name="box2")
    try:
        r = berth(capsys, "status", "--json")
        assert r.code == 0 and r.err == "", r
        held_now = berth(capsys, "server", "connections", "--json").json()
        assert sorted(k["server"] for k in held_now) == ["box", "box2"]
        assert len({k["pid"] for k in held_now}) == 1 and len({k["socket"] for k in held_now}) == 2
    finally:
        stop_all(tmp_path / "root2")


def test_killed_keeper_is_replaced_silently(capsys, box):
    srv, _root = box
    assert berth(capsys, "status", "--server", "box").code == 0
    [keeper] = keepers_of(capsys)
    os.kill(keeper["pid"], signal.SIGKILL)
    assert wait_gone(keeper["pid"])
    r = berth(capsys, "status", "--server", "box", "--json")
    assert r.code == 0 and r.err == "", r
    [fresh] = keepers_of(capsys)
    assert fresh["pid"] != keeper["pid"]


def test_hung_keeper_fails_over_to_a_direct_connection(capsys, box, monkeypatch):
    monkeypatch.setattr(held, "SILENCE", 2.5)  # beats come every second
    monkeypatch.setattr(held, "ASK_TIMEOUT", 0.5)
    assert berth(capsys, "status", "--server", "box").code == 0
    [keeper] = keepers_of(capsys)
    os.kill(keeper["pid"], signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = berth(capsys, "status", "--server", "box", "--json")
        took = time.monotonic() - t0
        assert r.code == 0, r
        assert took < 8, took  # one keeper's silence, then a direct (or new) connection: never a hang
    finally:
        os.kill(keeper["pid"], signal.SIGKILL)


def test_keeper_hung_during_a_read_only_call_gives_way_to_a_direct_connection(capsys, box, monkeypatch):
    monkeypatch.setattr(held, "SILENCE", 2.5)  # beats come every second
    assert berth(capsys, "status", "--server", "box").code == 0
    [keeper] = keepers_of(capsys)
    ws = Workspace()
    stopper = threading.Timer(1.0, os.kill, (keeper["pid"], signal.SIGSTOP))
    try:
        with ws.connect("box", held=True) as t:
            assert isinstance(t, held.HeldTransport)
            events = []
            stopper.start()
            t0 = time.monotonic()
            t.agent("sample", {"interval": 2.0, "count": 1, "window": 2.0}, on_event=events.append)
            took = time.monotonic() - t0
        assert any(e.get("event") == "sample" for e in events)
        assert 3.0 < took < 20, took  # the keeper's silence noticed, then the sample taken directly
    finally:
        stopper.cancel()
        os.kill(keeper["pid"], signal.SIGKILL)
        ws.close()


def test_changed_host_key_after_the_keeper_closed_is_refused(capsys, sshd_factory, tmp_path, held_on):
    srv = sshd_factory()
    root = tmp_path / "root"
    add(srv, root)
    try:
        assert berth(capsys, "status", "--server", "box").code == 0
        [keeper] = keepers_of(capsys)
        assert berth(capsys, "server", "disconnect", "box").code == 0
        assert wait_gone(keeper["pid"])
        before = logins(srv)
        srv.restart_with_new_host_key()
        r = berth(capsys, "status", "--server", "box")
        assert r.code != 0 and "CHANGED" in r.err and srv.fingerprint in r.err, r
        assert logins(srv) == before and keepers_of(capsys) == []  # nothing was sent
        events = berth(capsys, "audit", "list", "--json").json()
        assert "hostkey.changed" in [e["action"] for e in events]
    finally:
        stop_all(root)


def test_a_changed_server_entry_is_a_new_connection(capsys, box):
    srv, root = box
    assert berth(capsys, "status", "--server", "box").code == 0
    [old] = keepers_of(capsys)
    ws = Workspace()
    try:  # the same server, its command timeout changed: it decides the connection, so a new one
        ws.servers.save(ServerConfig(name="box", host=srv.host, port=srv.port, user=srv.user,
                                     key_path=str(srv.key_path), root=ws.servers.get("box").root,
                                     command_timeout=120))
    finally:
        ws.close()
    assert berth(capsys, "status", "--server", "box").code == 0
    [new] = keepers_of(capsys)
    assert new["socket"] != old["socket"]
    end = time.monotonic() + 5
    while Path(old["socket"]).exists() and time.monotonic() < end:  # the old one was told to go
        time.sleep(0.05)
    assert not Path(old["socket"]).exists()


def test_several_processes_at_once_share_one_keeper(box):
    srv, _root = box
    before = logins(srv)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-m", "app", "status", "--server", "box", "--json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert len({o for o, _ in outs}) == 1
    assert logins(srv) == before + 1 and len(held.keepers("box")) == 1


@pytest.fixture
def runtime_dir(monkeypatch):
    """An $XDG_RUNTIME_DIR another user can pass through (0711; the folder in it is Berth's, 0700)."""
    folder = tempfile.mkdtemp(prefix="berth-xdg-", dir="/tmp")
    os.chmod(folder, 0o711)
    monkeypatch.setenv("XDG_RUNTIME_DIR", folder)
    yield Path(folder)
    held.retire(None)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="making another Unix user needs root")
def test_another_user_cannot_use_the_socket(capsys, box, runtime_dir):
    assert berth(capsys, "status", "--server", "box").code == 0
    [keeper] = keepers_of(capsys)
    folder = socket_dir()
    assert folder.parent == runtime_dir and folder.stat().st_mode & 0o777 == 0o700
    name = "berthheld1"
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True, capture_output=True)
    probe = ("import json, socket, sys\n"
             "s = socket.socket(socket.AF_UNIX)\n"
             "try:\n    s.connect(sys.argv[1])\nexcept OSError as e:\n    print('connect:', e.strerror); sys.exit()\n"
             "print(s.makefile().readline())\n"  # refused at once, before any request
             "s.sendall(json.dumps({'op': 'info'}).encode() + b'\\n')\n")
    uid = pwd.getpwnam(name).pw_uid

    def as_other():
        return subprocess.run(["runuser", "-u", name, "--", "/usr/bin/python3", "-c", probe, keeper["socket"]],
                              capture_output=True, text=True, timeout=30, cwd="/").stdout

    try:
        assert "Permission denied" in as_other()  # the folder is 0700
        os.chmod(folder, 0o711)  # opened wide on purpose: the keeper itself refuses by the peer's uid
        os.chmod(keeper["socket"], 0o777)
        said = as_other()
        assert '"refused"' in said and str(keeper["pid"]) not in said and uid != os.getuid(), said
    finally:
        os.chmod(folder, 0o700)
        subprocess.run(["userdel", name], capture_output=True)
    assert berth(capsys, "status", "--server", "box").code == 0  # and it still serves us
