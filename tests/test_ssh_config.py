"""Connections: ~/.ssh/config aliases, ProxyJump (through a bastion in its own network namespace),
the user's known_hosts, the order of authentication methods and what a failed login reports.
$BERTH_SSH_DIR (conftest.user_ssh_dir) stands in for ~/.ssh: the developer's is never read."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from agent_kit import stop_all
from app.remote import credentials
from app.remote.connect import open_transport
from app.remote.errors import AuthFailed, JumpHostKeyRefused
from app.remote.sshconfig import SSHConfigError, list_aliases, parse_hop, resolve
from app.store.servers import ServerConfig
from cli_kit import berth, iris_copy, iris_input


def write_config(ssh_dir, text: str):
    (ssh_dir / "config").write_text(text)


def logins(srv) -> int:
    return srv.log_path.read_text().count("Accepted publickey")


def connections(srv) -> int:
    return srv.log_path.read_text().count("Connection from")


def keygen(path, passphrase=""):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return path


def authorize(srv, pub_path):
    with open(srv.authorized_keys_path, "a") as f:
        f.write(pub_path.read_text())


# -- reading the config ---------------------------------------------------------------------------

def test_aliases_resolve_with_ports_users_identities_and_multi_hop_jumps(user_ssh_dir):
    write_config(user_ssh_dir, """
Host bastion
    HostName 10.0.0.1
    Port 2200
    User jumper
    IdentityFile ~/keys/jump_key
    IdentitiesOnly yes
Host inner
    HostName inner.internal
    ProxyJump bastion
Host app
    HostName app.internal
    Port 2222
    User deploy
    IdentityFile /keys/app_key
    IdentityFile /keys/app_key2
    IdentitiesOnly yes
    ProxyJump bastion,ops@inner:2201
    ServerAliveInterval 7
    ConnectTimeout 4
Host legacy
    ProxyCommand nc %h %p
Host *.prod web?
    User wild
Host *
    User everyone
""")
    assert list_aliases() == ["app", "bastion", "inner", "legacy"]  # no patterns
    app = resolve("app")
    assert (app.host, app.port, app.user) == ("app.internal", 2222, "deploy")
    assert app.identity_files == ("/keys/app_key", "/keys/app_key2") and app.identities_only
    assert (app.server_alive_interval, app.connect_timeout) == (7.0, 4.0)
    # bastion, then inner as the user@host:port hop named in app's ProxyJump: ssh reaches inner with
    # `-J bastion`, which outranks inner's own ProxyJump, so the bastion comes once (as `ssh -G` routes it:
    # tests/test_ssh_openssh.py)
    hops = [(j.host, j.port, j.user) for j in app.jumps]
    assert hops == [("10.0.0.1", 2200, "jumper"), ("inner.internal", 2201, "ops")]
    assert app.jumps[0].identity_files == (os.path.expanduser("~/keys/jump_key"),) and app.jumps[0].identities_only
    other = resolve("somewhere.else")  # not an alias: OpenSSH's defaults, and `Host *`
    assert (other.host, other.port, other.user, other.jumps) == ("somewhere.else", 22, "everyone", ())
    assert resolve("db.prod").user == "wild"
    with pytest.raises(SSHConfigError, match="ProxyCommand"):
        resolve("legacy")
    assert parse_hop("me@[::1]:2022") == ("me", "::1", 2022)
    assert parse_hop("ssh://me@h:7") == ("me", "h", 7)
    with pytest.raises(SSHConfigError, match="not a number"):
        parse_hop("h:port")


def test_a_jump_loop_is_reported_not_followed(user_ssh_dir):
    write_config(user_ssh_dir, "Host a\n ProxyJump b\nHost b\n ProxyJump a\n")
    with pytest.raises(SSHConfigError, match="deeper"):
        resolve("a")


def test_cli_lists_aliases(capsys, user_ssh_dir):
    r = berth(capsys, "server", "aliases", "--json")
    assert r.code == 0 and r.json() == []  # no config at all is not an error
    write_config(user_ssh_dir, "Host b\n HostName 10.1.1.1\n User u\nHost a\n HostName h\n Port 2\n ProxyJump b\n")
    rows = berth(capsys, "server", "aliases", "--json").json()
    assert [(r["alias"], r["host"], r["port"], r["proxy_jump"]) for r in rows] == [
        ("a", "h", 2, "u@10.1.1.1:22"), ("b", "10.1.1.1", 22, "")]
    r = berth(capsys, "server", "aliases")
    assert r.code == 0 and "ALIAS" in r.out and "u@10.1.1.1:22" in r.out
    r = berth(capsys, "server", "add", "x", "--ssh-alias", "nope")
    assert r.code == 1 and "no Host 'nope'" in r.err
    r = berth(capsys, "server", "add", "x", "--ssh-alias", "a", "--auth", "agent,telepathy")
    assert r.code == 1 and "--auth" in r.err
    r = berth(capsys, "server", "add", "x")
    assert r.code == 1 and "--host" in r.err


# -- an alias against a real server, and the user's known_hosts -----------------------------------

def box_config(srv, key=None, extra=""):
    return (f"Host box\n    HostName {srv.host}\n    Port {srv.port}\n    User {srv.user}\n"
            f"    IdentityFile {key or srv.key_path}\n    IdentitiesOnly yes\n    ServerAliveInterval 7\n{extra}")


def test_server_add_from_an_alias_trusting_the_users_known_hosts(capsys, sshd, user_ssh_dir, berth_home, tmp_path):
    write_config(user_ssh_dir, box_config(sshd))
    r = berth(capsys, "server", "add", "box", "--ssh-alias", "box", "--root", tmp_path / "root")
    assert r.code == 1 and "not known" in r.err and sshd.fingerprint in r.err  # nobody trusts it yet
    # the user's known_hosts, hashed as `ssh-keygen -H` leaves it, is trusted as it is by ssh
    known = user_ssh_dir / "known_hosts"
    known.write_text(sshd.known_hosts_line() + "\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, capture_output=True)
    assert sshd.host not in known.read_text() and known.read_text().startswith("|1|")
    r = berth(capsys, "server", "add", "box", "--ssh-alias", "box", "--root", tmp_path / "root")
    assert r.code == 0 and "ssh alias box" in r.out, r
    assert not (berth_home / "known_hosts").exists()  # read only: nothing copied into Berth's file
    row = [s for s in berth(capsys, "server", "list", "--json").json() if s["name"] == "box"][0]
    assert (row["host"], row["port"], row["user"], row["ssh_alias"], row["key_path"]) == (
        sshd.host, sshd.port, sshd.user, "box", "")
    t = open_transport(ServerConfig(**{k: v for k, v in row.items() if k != "added_at"}))
    try:
        assert t.keepalive == 7 and t.target.identities_only and t.target.identity_files == (str(sshd.key_path),)
        assert t.agent("hello")["root"] == str(tmp_path / "root")
    finally:
        t.close()
    # an explicit flag overrides the alias: the port given is the port used
    wrong = sshd.port + 1 if sshd.port < 65535 else sshd.port - 1
    r = berth(capsys, "server", "add", "box2", "--ssh-alias", "box", "--port", wrong, "--root", tmp_path / "r2")
    assert r.code == 1 and f"{sshd.host}:{wrong}" in r.err, r


def test_a_changed_key_in_the_users_known_hosts_is_refused(capsys, sshd, sshd_factory, user_ssh_dir, tmp_path):
    other = sshd_factory()
    write_config(user_ssh_dir, box_config(sshd))
    # the user's file says another key for this address: a changed key, whatever Berth's file says
    (user_ssh_dir / "known_hosts").write_text(f"[{sshd.host}]:{sshd.port} {other.host_public_key}\n")
    before = logins(sshd)
    r = berth(capsys, "server", "add", "box", "--ssh-alias", "box", "--root", tmp_path / "root",
              "--accept-host-key", sshd.fingerprint)
    assert r.code == 1 and "CHANGED" in r.err and "ssh-keygen -R" in r.err and other.fingerprint in r.err, r
    assert logins(sshd) == before


def test_the_trusted_key_type_is_asked_for_first(capsys, sshd_factory, user_ssh_dir, tmp_path):
    """A server with ed25519 and RSA keys: knowing only its RSA key (from ~/.ssh/known_hosts), Berth
    asks for RSA and logs in, rather than calling the ed25519 key it would get by default unknown."""
    srv = sshd_factory()
    srv.stop()
    rsa = srv.folder / "ssh_host_rsa_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa)], check=True)
    srv.config_path.write_text(srv.config_path.read_text() + f"HostKey {rsa}\n")
    srv._fixed_port = True
    srv.start()
    rsa_pub = " ".join((srv.folder / "ssh_host_rsa_key.pub").read_text().split()[:2])
    (user_ssh_dir / "known_hosts").write_text(f"[{srv.host}]:{srv.port} {rsa_pub}\n")
    write_config(user_ssh_dir, box_config(srv))
    r = berth(capsys, "server", "add", "box", "--ssh-alias", "box", "--root", tmp_path / "root")
    assert r.code == 0, r


# -- authentication ------------------------------------------------------------------------------

@pytest.fixture
def ssh_agent(tmp_path, monkeypatch):
    """A real ssh-agent of this test's own; SSH_AUTH_SOCK points at it."""
    if shutil.which("ssh-agent") is None:
        pytest.fail("ssh-agent is needed (apt-get install openssh-client)", pytrace=False)
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))

    def add(key_path):
        subprocess.run(["ssh-add", "-q", str(key_path)], check=True, capture_output=True,
                       env={**os.environ, "SSH_AUTH_SOCK": str(sock)})

    yield add
    proc.terminate()
    proc.wait(timeout=5)


def test_a_failed_login_lists_each_method_and_why_without_secrets(capsys, sshd, user_ssh_dir, tmp_path,
                                                                   ssh_agent, memory_keyring):
    stranger = keygen(tmp_path / "stranger")
    ssh_agent(keygen(tmp_path / "agent_stranger"))
    write_config(user_ssh_dir, box_config(sshd, key=stranger).replace("    IdentitiesOnly yes\n", ""))
    credentials.set_secret(credentials.password_account("box"), "hunter2-very-secret")
    r = berth(capsys, "server", "add", "box", "--ssh-alias", "box", "--root", tmp_path / "root",
              "--accept-host-key", sshd.fingerprint)
    assert r.code == 1 and "could not log in" in r.err, r
    tried = r.err.split("tried", 1)[1]
    agent_at, key_at, pw_at = tried.index("SSH agent key"), tried.index(f"key file {stranger}"), tried.index("password")
    assert agent_at < key_at < pw_at  # agent, key files, password: in that order
    assert tried.count("rejected by the server") == 2
    assert "password: refused, this server takes no passwords (it allows publickey)" in tried
    assert "hunter2" not in r.err
    events = berth(capsys, "audit", "list", "--json").json()
    assert "hunter2" not in json.dumps(events)


def test_identities_only_keeps_other_agent_keys_back_and_the_agent_logs_in(capsys, sshd, user_ssh_dir, tmp_path,
                                                                           ssh_agent):
    ssh_agent(keygen(tmp_path / "agent_stranger"))
    write_config(user_ssh_dir, box_config(sshd, key=tmp_path / "missing_key"))
    r = berth(capsys, "server", "add", "box", "--ssh-alias", "box", "--root", tmp_path / "root",
              "--accept-host-key", sshd.fingerprint)
    assert r.code == 1 and "1 key(s) not offered (IdentitiesOnly" in r.err and "missing_key: not found" in r.err, r
    # the server's key in the agent: the agent logs in, no key file needed (IdentitiesOnly off)
    ssh_agent(sshd.key_path)
    write_config(user_ssh_dir, box_config(sshd, key=tmp_path / "missing_key").replace("    IdentitiesOnly yes\n", ""))
    r = berth(capsys, "server", "add", "box", "--ssh-alias", "box", "--root", tmp_path / "root",
              "--accept-host-key", sshd.fingerprint)
    assert r.code == 0, r


def test_an_encrypted_key_asks_once_and_may_keep_the_passphrase(sshd_factory, tmp_path, memory_keyring, monkeypatch):
    srv = sshd_factory()
    enc = keygen(tmp_path / "enc", passphrase="open sesame")
    authorize(srv, tmp_path / "enc.pub")
    asked = []

    def ask(path):
        asked.append(path)
        return "open sesame", True

    monkeypatch.setattr(credentials, "_session", {})
    server = ServerConfig(name="enc", host=srv.host, port=srv.port, user=srv.user, key_path=str(enc),
                          root=str(tmp_path / "root"))
    for accept in (srv.fingerprint, None):
        open_transport(server, accept, ask_passphrase=ask).close()
    assert asked == [str(enc)]  # once for both connections
    assert memory_keyring.passwords[("berth", credentials.key_passphrase_account(str(enc)))] == "open sesame"
    # a wrong answer is reported without echoing it
    monkeypatch.setattr(credentials, "_session", {})
    memory_keyring.passwords.clear()
    with pytest.raises(AuthFailed) as e:
        open_transport(server, ask_passphrase=lambda path: ("wrong guess", False))
    assert "the passphrase given does not open it" in str(e.value) and "wrong guess" not in str(e.value)
    assert not memory_keyring.passwords


# -- jump hosts ------------------------------------------------------------------------------------

def test_multi_hop_proxyjump_on_loopback(capsys, sshd_factory, user_ssh_dir, tmp_path):
    a, b, c = sshd_factory(), sshd_factory(), sshd_factory()
    for srv in (b, c):
        authorize(srv, a.pub_key_path)  # one key for all three
    shutil.copyfile(a.key_path, user_ssh_dir / "id_ed25519")  # hop a: the default identity, user@host:port form
    write_config(user_ssh_dir, f"""
Host hop-b
    HostName {b.host}
    Port {b.port}
    IdentityFile {a.key_path}
Host far
    HostName {c.host}
    Port {c.port}
    IdentityFile {a.key_path}
    ProxyJump {a.user}@{a.host}:{a.port},hop-b
""")
    argv = ["server", "add", "far", "--ssh-alias", "far", "--root", tmp_path / "root", "--accept-host-key", c.fingerprint]
    seen_b, seen_c = connections(b), connections(c)  # start() checked each answers
    r = berth(capsys, *argv)
    assert r.code == 1 and "jump host" in r.err and a.fingerprint in r.err and "--accept-jump-key" in r.err, r
    assert (logins(a), connections(b), connections(c)) == (0, seen_b, seen_c)
    r = berth(capsys, *argv, "--accept-jump-key", a.fingerprint)
    assert r.code == 1 and b.fingerprint in r.err and logins(a) == 1 and logins(b) == 0, r
    assert connections(c) == seen_c
    r = berth(capsys, *argv, "--accept-jump-key", b.fingerprint)  # a's key is now trusted
    assert r.code == 0, r
    assert logins(a) >= 2 and logins(b) >= 1 and logins(c) == 1
    actions = [(e["action"], e["detail"]) for e in berth(capsys, "audit", "list", "--json").json()]
    assert sum(1 for act, detail in actions if act == "hostkey.trust" and "jump host" in detail) == 2


def answers_ssh(host, port) -> bool:
    """An SSH banner from host:port? (This machine's default route may accept any TCP connection,
    so a connection alone proves nothing.)"""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(4) == b"SSH-"
    except OSError:
        return False


def target_config(bastion, target, net):
    return f"""
Host bastion
    HostName {net.bastion_ip}
    Port {bastion.port}
    User {bastion.user}
    IdentityFile {bastion.key_path}
    IdentitiesOnly yes
Host target
    HostName {net.target_ip}
    User {target.user}
    IdentityFile {target.key_path}
    IdentitiesOnly yes
    ProxyJump bastion
    ConnectTimeout 5
"""


def test_deploy_through_a_bastion_to_a_target_reachable_only_through_it(capsys, bastion_and_target, user_ssh_dir,
                                                                        tmp_path):
    bastion, target, net = bastion_and_target
    assert not answers_ssh(net.target_ip, target.port)  # not from here: only the bastion reaches it
    assert answers_ssh(net.bastion_ip, bastion.port)
    write_config(user_ssh_dir, target_config(bastion, target, net))
    root = tmp_path / "target root"
    argv = ["server", "add", "tgt", "--ssh-alias", "target", "--root", root, "--accept-host-key", target.fingerprint]

    # an unknown jump host key is refused, and nothing reaches the target
    r = berth(capsys, *argv)
    assert r.code == 1 and "jump host" in r.err and bastion.fingerprint in r.err and "Nothing was sent" in r.err, r
    assert logins(bastion) == 0 and connections(target) == 0
    # --accept-host-key is for the server itself: it does not trust a jump host
    r = berth(capsys, "server", "add", "tgt", "--ssh-alias", "target", "--root", root,
              "--accept-host-key", bastion.fingerprint)
    assert r.code == 1 and "jump host" in r.err and logins(bastion) == 0 and connections(target) == 0
    with pytest.raises(JumpHostKeyRefused):
        open_transport(ServerConfig(name="tgt", host=net.target_ip, user=target.user, ssh_alias="target"))

    try:
        r = berth(capsys, *argv, "--accept-jump-key", bastion.fingerprint)
        assert r.code == 0 and "trusted jump host" in r.err, r
        assert f"Connection from {net.bastion_inner_ip}" in target.log_path.read_text()  # came from the bastion
        assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "tgt").code == 0
        r = berth(capsys, "predict", "iris", "--server", "tgt", "--input", iris_input())
        assert r.code == 0 and json.loads(r.out)[0]["class"] == "setosa", r
        status = berth(capsys, "status", "--server", "tgt", "--json").json()
        assert [(s["model"], s["state"]) for s in status] == [("iris", "running")]
    finally:
        stop_all(root)

    # the bastion goes away: a clear failure naming it, quickly, no hang
    bastion.stop()
    started = time.monotonic()
    r = berth(capsys, "server", "check", "tgt")
    assert r.code == 1 and net.bastion_ip in r.err and time.monotonic() - started < 10, r


# -- timeouts and keepalive: in-flight work fails, never hangs -----------------------------------

def direct(srv, tmp_path, **kw):
    from app.remote.hostkeys import KnownHosts
    from app.remote.ssh import SSHTransport

    return SSHTransport("box", srv.host, srv.port, srv.user, str(tmp_path / "root"), KnownHosts(tmp_path / "kh"),
                        key_path=str(srv.key_path), accept_fingerprint=srv.fingerprint, **kw)


def test_a_silent_command_is_cut_off_at_the_command_timeout(sshd, tmp_path):
    t = direct(sshd, tmp_path, command_timeout=1)
    try:
        out, wait, abort = t._exec(["sleep", "30"], b"")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            out.read()
        assert time.monotonic() - started < 5
        abort()
        assert t._exec(["echo", "still usable"], b"")[0].read() == b"still usable\n"  # the link itself is fine
    finally:
        t.close()


def test_a_dead_link_ends_a_running_command_within_three_keepalives(bastion_and_target, tmp_path):
    """The bastion's side of the cable is pulled while a command runs: no FIN, no RST, nothing. The
    command must end within about 3 keepalive intervals (not the kernel's ~15 minutes)."""
    bastion, _target, net = bastion_and_target
    from app.remote.hostkeys import KnownHosts
    from app.remote.ssh import SSHTransport

    t = SSHTransport("b", net.bastion_ip, bastion.port, bastion.user, str(tmp_path / "root"),
                     KnownHosts(tmp_path / "kh"), key_path=str(bastion.key_path),
                     accept_fingerprint=bastion.fingerprint, keepalive=1, command_timeout=0)
    try:
        assert t._client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 3000
        out, wait, abort = t._exec(["sleep", "120"], b"")
        subprocess.run(["ip", "-n", net.bastion_ns, "link", "set", net._veths[1], "down"], check=True)
        started = time.monotonic()
        try:
            out.read()
        except OSError:
            pass
        assert time.monotonic() - started < 12
        assert not t._client.is_active()
    finally:
        t.close()
