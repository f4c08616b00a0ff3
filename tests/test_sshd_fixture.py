"""The test fixtures themselves: the loopback sshd, the isolated BERTH_HOME and the in-memory keyring."""
import base64
import hashlib
import os
import socket

import keyring
import paramiko
import pytest

try:
    from . import sshd as sshd_mod  # type: ignore[import-not-found]
except ImportError:
    import sshd as sshd_mod


def fingerprint(key: paramiko.PKey) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def connect(server, timeout: float = 10.0) -> paramiko.Transport:
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    transport = paramiko.Transport(sock)
    transport.start_client(timeout=timeout)
    return transport


def run(transport: paramiko.Transport, command: str) -> tuple[int, str]:
    channel = transport.open_session(timeout=10)
    channel.settimeout(10)
    channel.exec_command(command)
    out = channel.makefile("rb").read().decode()
    return channel.recv_exit_status(), out


def test_sshd_accepts_user_key_and_runs_a_command(sshd):
    assert sshd.host == "127.0.0.1"
    assert sshd.running
    transport = connect(sshd)
    try:
        assert fingerprint(transport.get_remote_server_key()) == sshd.fingerprint
        assert transport.get_remote_server_key().get_name() == "ssh-ed25519"
        transport.auth_publickey(sshd.user, paramiko.Ed25519Key.from_private_key_file(str(sshd.key_path)))
        assert transport.is_authenticated()
        status, out = run(transport, "echo hi")
        assert (status, out) == (0, "hi\n")
    finally:
        transport.close()


def test_sshd_serves_sftp(sshd):
    transport = connect(sshd)
    try:
        transport.auth_publickey(sshd.user, paramiko.PKey.from_path(sshd.key_path))
        sftp = paramiko.SFTPClient.from_transport(transport)
        target = sshd.folder / "uploaded.txt"
        with sftp.open(str(target), "w") as f:
            f.write(b"payload")
        assert target.read_bytes() == b"payload"
        assert "uploaded.txt" in sftp.listdir(str(sshd.folder))
        sftp.remove(str(target))
    finally:
        transport.close()


def test_sshd_refuses_an_unknown_key(sshd):
    transport = connect(sshd)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            transport.auth_publickey(sshd.user, paramiko.ECDSAKey.generate())
    finally:
        transport.close()


def test_restart_with_new_host_key_keeps_the_port_and_changes_the_key(sshd_factory):
    server = sshd_factory()
    port, old = server.port, server.fingerprint
    transport = connect(server)
    assert fingerprint(transport.get_remote_server_key()) == old
    transport.close()

    new = server.restart_with_new_host_key()

    assert new == server.fingerprint != old
    assert server.port == port
    assert sshd_mod.fingerprint_of(server.host_pub_path) == new
    transport = connect(server)
    try:
        assert fingerprint(transport.get_remote_server_key()) == new
        transport.auth_publickey(server.user, paramiko.PKey.from_path(server.key_path))
        assert run(transport, "echo hi") == (0, "hi\n")
    finally:
        transport.close()


@pytest.mark.parametrize("key_type, key_name", [("ecdsa", "ecdsa-sha2-nistp256"), ("rsa", "ssh-rsa")])
def test_other_host_key_types(sshd_factory, key_type, key_name):
    server = sshd_factory(host_key_type=key_type)
    transport = connect(server)
    try:
        key = transport.get_remote_server_key()
        assert key.get_name() == key_name
        assert fingerprint(key) == server.fingerprint
        assert server.known_hosts_line().startswith(f"[127.0.0.1]:{server.port} {key_name} ")
    finally:
        transport.close()


def test_factory_servers_are_independent(sshd, sshd_factory):
    a, b = sshd_factory(), sshd_factory()
    assert len({sshd.port, a.port, b.port}) == 3
    assert len({sshd.fingerprint, a.fingerprint, b.fingerprint}) == 3
    b.stop()
    assert not b.running and a.running and sshd.running


def test_raised_limits_are_in_the_config_and_sshd_takes_them(sshd_factory):
    server = sshd_factory(max_startups="200:30:400", max_sessions=300)
    config = server.config_path.read_text().splitlines()
    assert "MaxStartups 200:30:400" in config and "MaxSessions 300" in config
    transport = connect(server)
    try:
        assert fingerprint(transport.get_remote_server_key()) == server.fingerprint
    finally:
        transport.close()


@pytest.mark.parametrize("limits", [{"max_startups": "10\nPermitEmptyPasswords yes"}, {"max_startups": "10:30"},
                                    {"max_startups": ""}, {"max_sessions": 0}, {"max_sessions": "5"}])
def test_bad_limits_are_refused_before_anything_is_written(tmp_path, limits):
    with pytest.raises(ValueError, match="max_startups must be"):
        sshd_mod.SshServer(folder=tmp_path / "srv", **limits)
    assert not (tmp_path / "srv").exists()

def test_missing_sshd_fails_loudly(monkeypatch):
    monkeypatch.setattr(sshd_mod, "SSHD", "/nonexistent/sshd")
    with pytest.raises(pytest.fail.Exception, match="openssh-server"):
        sshd_mod.require_sshd()


# --- isolation fixtures ---------------------------------------------------------------------------

@pytest.mark.parametrize("run_no", [1, 2])
def test_keyring_is_in_memory_and_fresh_per_test(run_no, memory_keyring):
    """Runs twice: whichever runs second would see the first's secret if the keyring leaked."""
    backend = keyring.get_keyring()
    assert backend is memory_keyring
    assert backend.priority == 1
    assert "keyrings.alt" not in type(backend).__module__
    assert keyring.get_password("berth-test", "alice") is None
    keyring.set_password("berth-test", "alice", f"s3cret-{run_no}")
    assert keyring.get_password("berth-test", "alice") == f"s3cret-{run_no}"
    assert memory_keyring.passwords == {("berth-test", "alice"): f"s3cret-{run_no}"}
    keyring.delete_password("berth-test", "alice")
    assert keyring.get_password("berth-test", "alice") is None
    assert os.environ["PYTHON_KEYRING_BACKEND"] == "keyring.backends.fail.Keyring"


@pytest.mark.parametrize("run_no", [1, 2])
def test_berth_home_is_a_fresh_tmp_dir(run_no, berth_home):
    assert os.environ["BERTH_HOME"] == str(berth_home)
    assert berth_home.is_dir() and list(berth_home.iterdir()) == []
    (berth_home / "marker").write_text(str(run_no))


def test_a_second_sshd_on_a_taken_port_is_not_taken_for_up(sshd, tmp_path):
    """Its start fails with sshd's own reason: the first one's banner on that port is not its own (a
    fleet of 100 once counted a server up whose sshd had exited, then its key was "rejected")."""
    second = sshd_mod.SshServer(folder=tmp_path / "second", port=sshd.port)
    try:
        with pytest.raises(RuntimeError, match="exited with status 255") as failure:
            second.start()
        assert "Cannot bind" in str(failure.value) or "Address already in use" in str(failure.value)
        assert not second.running
    finally:
        second.stop()
    assert sshd.running


def test_the_fleet_bench_plain_shell_logs_in_with_debians_start_up_files_only(tmp_path):
    """bench/fleet.py --plain-shell: each login's HOME is the server's own, holding /etc/skel's files,
    so `python3` is the one on the system PATH (not this user's pyenv shim); without it, this user's."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from fleet import Fleet

    fleets = {plain: Fleet(tmp_path / str(plain), 1, plain_shell=plain) for plain in (True, False)}
    try:
        for fleet in fleets.values():
            fleet.start_sshds()
        seen = {}
        for plain, fleet in fleets.items():
            transport = connect(fleet.sshds[0])
            transport.auth_publickey(fleet.sshds[0].user, paramiko.Ed25519Key.from_private_key_file(
                str(fleet.sshds[0].key_path)))
            seen[plain] = run(transport, 'echo "$HOME"; command -v python3')[1].split()
            transport.close()
    finally:
        for fleet in fleets.values():
            for srv in fleet.sshds:
                srv.stop()
    assert seen[True][0] == str(tmp_path / "True" / "fleet-1" / "home")
    assert (tmp_path / "True" / "fleet-1" / "home" / ".bashrc").read_bytes() == Path("/etc/skel/.bashrc").read_bytes()
    assert seen[False][0] == os.path.expanduser("~") and len(seen[True]) == 2 and "/.pyenv/" not in seen[True][1]
