"""Changes over the held connection (app/remote/held.py, keeper_files.py) against real OpenSSH
servers on loopback: an upload and the path operations cross the keeper's socket, a cancelled
upload stops there, and a group's status, deploys, rollback, stop and start log in once per server."""
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_kit import stop_all
from app.remote import held, held_key
from app.remote.transport import SendJob, SendStopped
from app.workspace import Workspace
from cli_kit import berth, iris_copy
from held_kit import add, logins

REPO = Path(__file__).resolve().parent.parent





def test_an_upload_and_path_operations_cross_the_keeper(capsys, sshd, tmp_path, held_on):
    root = tmp_path / "root"
    add(sshd, root, "box")
    data = os.urandom(8 << 20)  # 8 chunks, 4 streams: a stop asked after the first one lands before the end
    local = tmp_path / "blob"
    local.write_bytes(data)
    try:
        assert berth(capsys, "status", "--server", "box").code == 0  # starts the keeper
        before = logins(sshd)
        ws = Workspace()
        try:
            with ws.connect("box", held=True) as t:
                assert isinstance(t, held.HeldTransport)
                up = f"{root}/up"
                t.mkdirs(up)
                counted = []
                t.send([SendJob(local, f"{up}/blob", 0, len(data))], counted.append)
                assert sum(counted) == len(data) and (root / "up" / "blob").read_bytes() == data
                # a resumed upload: only the bytes after the offset cross, the file is whole again
                with open(root / "up" / "blob", "r+b") as f:
                    f.truncate(6 << 20)
                counted.clear()
                t.send([SendJob(local, f"{up}/blob", 6 << 20, len(data))], counted.append)
                assert sum(counted) == len(data) - (6 << 20) and (root / "up" / "blob").read_bytes() == data
                # cancelled once the first bytes are in: the keeper stops, what was sent stays
                counted.clear()
                with pytest.raises(SendStopped):
                    t.send([SendJob(local, f"{up}/other", 0, len(data))], counted.append, lambda: bool(counted))
                assert 0 < (root / "up" / "other").stat().st_size < len(data)
                t.rename(f"{up}/other", f"{up}/third")
                t.chmod(f"{up}/third", 0o600)
                assert t.exists(f"{up}/third") and not t.exists(f"{up}/other")
                assert (root / "up" / "third").stat().st_mode & 0o777 == 0o600
                t.remove_file(f"{up}/third")
                with pytest.raises(OSError, match="No such file"):  # the server's error, as a direct call's
                    t.rename(f"{up}/third", f"{up}/fourth")
                t.remove_tree(up)
                assert not (root / "up").exists()
                assert t._direct is None  # nothing of it went around the keeper
        finally:
            ws.close()
        assert logins(sshd) == before
        assert "upload" in berth(capsys, "server", "activity", "box").out  # logged here, as a direct one is
    finally:
        stop_all(root)


@pytest.mark.slow  # three real deploys of iris (venvs built on each server): ~40 s on a loaded CI machine
def test_a_group_status_deploys_rollback_stop_and_start_log_in_once_per_server(capsys, sshd_factory, tmp_path,
                                                                               held_on):
    servers = {f"s{i}": sshd_factory() for i in (1, 2, 3)}
    for name, srv in servers.items():
        add(srv, tmp_path / f"{name} root", name)
    added = {n: logins(s) for n, s in servers.items()}  # `server add` logged in to check each
    try:
        assert berth(capsys, "status", "--server", "s*").code == 0
        assert {n: logins(s) - added[n] for n, s in servers.items()} == {n: 1 for n in servers}
        for version in ("1.0.0", "2.0.0"):
            r = berth(capsys, "deploy", iris_copy(tmp_path, version), "--server", "s*", "--parallel", "3", "--json")
            assert r.code == 0 and {(x["state"], x["version"]) for x in r.json()["servers"]} == {("ok", version)}, r
        r = berth(capsys, "rollback", "iris", "--server", "s*", "--json")
        assert r.code == 0, r
        for action in ("stop", "start"):
            assert berth(capsys, action, "iris", "--server", "s*", "--json").code == 0
        rows = berth(capsys, "status", "--server", "s*", "--json").json()
        assert {(x["server"], x["version"], x["state"]) for x in rows} == {(n, "1.0.0", "running") for n in servers}
        assert {n: logins(s) - added[n] for n, s in servers.items()} == {n: 1 for n in servers}  # the keepers'

        held_now = berth(capsys, "server", "connections", "--json").json()
        assert sorted(k["server"] for k in held_now) == sorted(servers) and all(k["calls"] >= 6 for k in held_now)
    finally:
        for name in servers:
            stop_all(tmp_path / f"{name} root")


def test_a_frozen_build_starts_its_keeper_through_its_own_executable(tmp_path, monkeypatch, held_on):
    """sys.frozen: no `python -m`; the executable is run with the hidden argument. A script stands
    for the frozen executable here and runs the same entry point (app/__main__.py) from source."""
    control = held_key.control_path()  # the source's code digest: the keeper below runs from source
    seen = tmp_path / "argv"
    exe = tmp_path / "berth"
    exe.write_text(f'#!/bin/sh\necho "$@" > {shlex.quote(str(seen))}\n'
                   f'exec {shlex.quote(sys.executable)} -m app "$@"\n')
    exe.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    assert held._spawn(control, time.monotonic() + 30) is None
    assert seen.read_text().split() == ["--keeper", str(control)]
    said = held.ask(control, {"op": "ping"})
    assert said["ok"] and said["pid"] != os.getpid()
    end = time.monotonic() + 15  # holding nothing, it ends by itself (Process.GRACE; a ping would keep it)
    while _alive(said["pid"]) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _alive(said["pid"]) and not control.exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_frozen_builds_code_digest_follows_its_executable(tmp_path, monkeypatch):
    exe = tmp_path / "berth"
    exe.write_bytes(b"one build")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    held_key.code_digest.cache_clear()
    try:
        first = held_key.code_digest()
        exe.write_bytes(b"another build")
        held_key.code_digest.cache_clear()
        assert held_key.code_digest() != first  # an upgraded build never talks to the old one's keeper
    finally:
        held_key.code_digest.cache_clear()


def test_the_keeper_argument_is_refused_by_hand(tmp_path, held_on):
    elsewhere = tmp_path / "keeper.ctl"
    r = subprocess.run([sys.executable, "-m", "app", "--keeper", str(elsewhere)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert r.returncode == 2 and "not a person" in r.stderr and not elsewhere.exists(), r
