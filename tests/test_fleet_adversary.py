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



def _raw(path, data: bytes, timeout=15.0, shut=True) -> bytes:
    """`data` written to the keeper's socket at `path` as it is; what came back until it closed."""
    import socket
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:  # it closed on us first: what it said is read below
            pass
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass
        return out


def test_malformed_huge_and_unknown_requests_are_answered_or_dropped_and_the_keeper_serves_on(one):
    from app.remote import held
    from app.remote.held_key import control_path

    assert berth_proc("status", "--server", "s1").returncode == 0
    [keeper] = held.keepers("s1")
    sock, control = Path(keeper["socket"]), control_path()
    rss = psutil.Process(keeper["pid"]).memory_info().rss
    junk = [b"[1, 2]\n", b'"op"\n', b"not json\n", b"\xff\xfe\n", b"{}\n", b'{"op": 7}\n',
            b'{"op": "file", "name": "__init__", "args": []}\n', b'{"op": "file", "name": "exists", "args": [[1]]}\n',
            b'{"op": "send", "jobs": [["relative/path", "/tmp/x", 0, 1]]}\n', b'{"op": "send", "jobs": 5}\n',
            b'{"op": "call"}\n']
    for data in junk:
        _raw(sock, data)
    for data in (b'{"op": "open"}\n', b'{"op": "open", "server": {"nope": 1}, "key": "k", "socket": "/tmp/x"}\n',
                 b'{"op": "open", "server": {"name": "s1"}, "key": "k", "socket": "/tmp/elsewhere.sock"}\n',
                 b"[]\n", b"null\n"):
        said = _raw(control, data)
        assert b"Traceback" not in said
    t0 = time.monotonic()
    said = _raw(sock, b"{" + b" " * (64 << 20), shut=False)  # 64 MB, no end of line: not buffered for ever
    assert time.monotonic() - t0 < 15 and b"too long" in said, said[:200]
    assert psutil.Process(keeper["pid"]).memory_info().rss - rss < 48 << 20  # its limit is 16 MB
    assert held.ask(sock, {"op": "info"})["pid"] == keeper["pid"]
    r = berth_proc("status", "--server", "s1", "--json")
    assert r.returncode == 0 and [k["pid"] for k in held.keepers("s1")] == [keeper["pid"]], r.stderr


# --- group operations -------------------------------------------------------------------------------

def test_a_second_ctrl_c_with_a_server_in_flight_still_records_each_servers_outcome(pair, tmp_path):
    (s1, _s2), _roots = pair
    assert berth_proc("status", "--server", "s*").returncode == 0  # held: s1's hang is inside the call
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "app", "deploy", str(iris_copy(tmp_path)), "--server", "s*",
                             "--parallel", "1"], env=env, cwd=str(REPO), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    err = []
    for line in proc.stderr:
        err.append(line)
        if line.startswith("[s1] Connecting"):
            break
    with Hung(s1):  # s1 stays in flight: the operator gives up on it with a second Ctrl-C
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, more = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(err) + more
    events = json.loads(berth_proc("audit", "list", "--json").stdout)
    [group] = [e for e in events if e["action"] == "deploy.group" and e["outcome"] != "started"]
    facts = json.loads(group["detail"])
    assert group["outcome"] == "failed" and facts["abandoned"] == ["s1"], group
    assert facts["outcomes"] == {"s2": "skipped: not started"} and facts["stopped"] == "stopped", facts


def test_a_host_key_revoked_while_its_connection_is_held_is_never_used_again(one):
    from app.remote import held
    from app.store.paths import known_hosts_path

    assert berth_proc("status", "--server", "s1").returncode == 0
    [keeper] = held.keepers("s1")
    with open(known_hosts_path(), "a") as f:  # the operator learns the key leaked
        f.write(f"@revoked [{one.host}]:{one.port} {one.host_public_key}\n")
    r = berth_proc("status", "--server", "s1")
    assert r.returncode != 0 and "revoked" in r.stderr.lower(), r.stderr
    end = time.monotonic() + 5
    while Path(keeper["socket"]).exists() and time.monotonic() < end:  # the held one was told to go
        time.sleep(0.05)
    assert not Path(keeper["socket"]).exists() and held.keepers("s1") == []


def test_one_berth_home_spelled_two_ways_shares_its_held_connections(one, berth_home, tmp_path, monkeypatch):
    import tempfile
    runtime = Path(tempfile.mkdtemp(prefix="berth-xdg-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    (tmp_path / "via").symlink_to(berth_home)  # e.g. ~/data a symlink to /mnt/data
    try:
        assert berth_proc("status", "--server", "s1").returncode == 0
        monkeypatch.setenv("BERTH_HOME", str(tmp_path / "via"))
        listed = json.loads(berth_proc("server", "connections", "--json").stdout)
        assert [k["server"] for k in listed] == ["s1"], listed
        assert "s1: disconnected" in berth_proc("server", "disconnect", "--all").stdout
    finally:
        subprocess.run(["rm", "-rf", str(runtime)])


def test_selectors_at_their_edges_pick_each_server_once_or_say_what_exists(capsys):
    from app.cli.selectors import NoServerMatches, resolve_servers
    from cli_kit import berth

    ws = Workspace()
    for name, env in (("web-1", "staging"), ("web-2", "staging"), ("web-10", "production")):
        ws.servers.save(ServerConfig(name=name, kind="local", root=f"/nonexistent/{name}", environment=env))
    assert resolve_servers(ws, ["web-1"] * 300 + ["web-*", "env:staging"]) == ["web-1", "web-2", "web-10"]
    for selector, said in (("env:", "give an environment's name"), ("x*", "no server name matches 'x*'"),
                           ("web-[1", "close names: web-1, web-2, web-10"), ("env:prod", "production, staging")):
        with pytest.raises(NoServerMatches) as e:
            resolve_servers(ws, ["web-1", selector])
        assert said in str(e.value), (selector, e.value)
    ws.close()
    r = berth(capsys, "server", "list", "--env", "")
    assert r.code == 1 and "env:" not in r.err.split("e.g.")[0], r
    for flags in (["--parallel", "0"], ["--parallel", "-1"], ["--max-failures", "-1"], ["--parallel", "x"]):
        assert berth(capsys, "stop", "iris", "--server", "web-*", *flags).code == 2, flags


def test_a_host_key_changed_under_a_held_connection_never_logs_in_to_the_new_key(sshd_factory, tmp_path, held_on):
    from app.remote import held
    from held_kit import logins

    srv = sshd_factory()
    add(srv, "s1", tmp_path / "r1")
    try:
        assert berth_proc("status", "--server", "s1").returncode == 0
        [keeper] = held.keepers("s1")
        srv.restart_with_new_host_key()  # a new sshd on the same port, a new key; the old sessions live on
        before = logins(srv)
        for _ in range(2):  # the held session (the old, checked key) serves on, or a direct call is refused
            r = berth_proc("status", "--server", "s1")
            assert r.returncode == 0 or "CHANGED" in r.stderr, r.stderr
        assert logins(srv) == before, srv.log_tail()  # nothing authenticated to the new key
        held.retire("s1")
        r = berth_proc("status", "--server", "s1")
        assert r.returncode != 0 and "CHANGED" in r.stderr and logins(srv) == before, r.stderr
        assert keeper["pid"] not in [k["pid"] for k in held.keepers("s1")]
    finally:
        stop_all(tmp_path / "r1")


def test_an_entry_edited_to_a_key_the_server_refuses_never_rides_the_held_login(one, tmp_path):
    from app.remote import held

    assert berth_proc("status", "--server", "s1").returncode == 0
    [old] = held.keepers("s1")
    other = tmp_path / "id_other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    ws = Workspace()
    try:  # the same server and user, another key: the server's authorized_keys does not have it
        entry = ws.servers.get("s1")
        ws.servers.save(ServerConfig(**dict(entry.__dict__, key_path=str(other))))
    finally:
        ws.close()
    r = berth_proc("status", "--server", "s1")
    assert r.returncode != 0 and "could not log in" in r.stderr, (r.stdout, r.stderr)
    end = time.monotonic() + 5
    while Path(old["socket"]).exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert not Path(old["socket"]).exists() and held.keepers("s1") == []
