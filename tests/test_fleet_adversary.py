"""An adversary's and a new operator's pass over held connections (app/remote/held.py, keeper.py)
and group operations (`--server SEL`, `--parallel`, `--max-failures`, `--canary-first`), with real
OpenSSH servers on loopback and real `berth` processes: a hung server, the keeper's sockets, host
keys and entries changed under a held connection, selectors and budgets at their edges."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agent_kit import stop_all
from app.store.servers import ServerConfig
from app.workspace import Workspace
from cli_kit import iris_copy

REPO = Path(__file__).resolve().parent.parent


def berth_proc(*argv, timeout=90) -> subprocess.CompletedProcess:
    """`berth ARGV` as its own process (this test's Berth home and keyring, its environment): a hang
    is this test's failure, not the test run's."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "app", *map(str, argv)], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=str(REPO))


def add(srv, name, root, **entry):
    ws = Workspace()
    try:
        ws.add_server(ServerConfig(name=name, host=srv.host, port=srv.port, user=srv.user,
                                   key_path=str(srv.key_path), root=str(root), **entry), srv.fingerprint)
    finally:
        ws.close()


class Hung:
    """An sshd and every sshd process it forked (the sessions of connections held already) stopped
    with SIGSTOP: TCP still answers (the kernel does), SSH does not, as a server that hangs."""

    def __init__(self, srv):
        parent = psutil.Process(srv.proc.pid)
        self.procs = [parent] + [c for c in parent.children(recursive=True) if c.name() == "sshd"]

    def __enter__(self):
        for p in self.procs:
            p.send_signal(signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            try:
                p.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass


@pytest.fixture
def pair(sshd_factory, tmp_path, held_on):
    """Two loopback servers, "s1" and "s2", keepalive 1 s and connect timeout 2 s (a hang is found
    in seconds, not in the defaults' 45); runners stopped after."""
    servers, roots = [sshd_factory(), sshd_factory()], [tmp_path / "r1", tmp_path / "r2"]
    for i, (srv, root) in enumerate(zip(servers, roots), 1):
        add(srv, f"s{i}", root, keepalive=1, connect_timeout=2)
    yield servers, roots
    for root in roots:
        stop_all(root)


def test_a_server_that_hangs_under_a_held_connection_ends_the_group_and_is_named(pair, tmp_path):
    (s1, s2), _roots = pair
    assert berth_proc("status", "--server", "s*").returncode == 0  # both connections held now
    bundle = iris_copy(tmp_path)
    with Hung(s2):
        t0 = time.monotonic()
        r = berth_proc("deploy", bundle, "--server", "s*", "--parallel", "2", "--max-failures", "1", "--json",
                       timeout=120)
        took = time.monotonic() - t0
    summary = {s["server"]: s for s in json.loads(r.stdout)["servers"]}
    assert r.returncode == 1 and summary["s1"]["state"] == "ok", r.stderr[-2000:]
    assert summary["s2"]["state"] == "failed" and "no answer to 3 keepalives" in summary["s2"]["detail"], summary["s2"]
    assert took < 60, took  # 3 unanswered keepalives of 1 s, a 2 s connect; a deploy of s1 alongside


# --- the keeper's sockets ---------------------------------------------------------------------------

@pytest.fixture
def one(sshd, tmp_path, held_on, monkeypatch):
    """The module's server as "s1", held connections on, $XDG_RUNTIME_DIR unset (the folder is
    <BERTH_HOME>/held); runners stopped after."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    add(sshd, "s1", tmp_path / "r1")
    yield sshd
    stop_all(tmp_path / "r1")


@pytest.mark.parametrize("planted", ["loose", "symlink", "dangling"])
def test_a_socket_folder_made_loose_or_a_symlink_beforehand_is_never_used_and_is_said(one, berth_home, tmp_path,
                                                                                    planted):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if planted == "loose":
        (berth_home / "held").mkdir()
        os.chmod(berth_home / "held", 0o755)
    else:
        (berth_home / "held").symlink_to(elsewhere if planted == "symlink" else tmp_path / "not-yet")
    try:
        r = berth_proc("status", "--server", "s*")
        assert r.returncode == 0, r.stderr  # connected directly
        assert r.stderr.count("not a private folder") == 1 and str(berth_home / "held") in r.stderr, r.stderr
        assert list(elsewhere.iterdir()) == [] and not (tmp_path / "not-yet").exists()
        r = berth_proc("server", "connections")
        assert r.returncode == 1 and "not a private folder" in r.stderr and "Traceback" not in r.stderr, r.stderr
    finally:
        (berth_home / "held").unlink() if planted != "loose" else (berth_home / "held").rmdir()

