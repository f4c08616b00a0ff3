"""`@revoked` and `@cert-authority` lines in known_hosts (the user's and Berth's own), against a
real loopback sshd: a revoked key is refused always, naming the file and line; nothing logs in."""
import subprocess

from app.remote.hostkeys import host_matches
from cli_kit import berth


def logins(srv) -> int:
    return srv.log_path.read_text().count("Accepted publickey")


def pub(srv) -> str:
    return srv.host_public_key  # "ssh-ed25519 AAAA..."


def test_a_server_already_added_is_refused_once_its_key_is_revoked(capsys, box, user_ssh_dir):
    srv, _root = box
    assert berth(capsys, "server", "check", "box").code == 0  # trusted in Berth's own file
    before = logins(srv)
    known = user_ssh_dir / "known_hosts"
    known.write_text(f"# revoked after the leak\n{srv.known_hosts_line()}\n@revoked * {pub(srv)}\n")
    r = berth(capsys, "server", "check", "box")
    assert r.code == 1 and "REVOKED" in r.err and f"{known}:3" in r.err and srv.fingerprint in r.err, r
    assert logins(srv) == before  # refused before any login
    # --accept-host-key does not outweigh it either
    r = berth(capsys, "server", "check", "box", "--accept-host-key", srv.fingerprint)
    assert r.code == 1 and "REVOKED" in r.err and logins(srv) == before, r


def test_a_revoked_line_in_berths_own_file_beats_accept_host_key(capsys, sshd, berth_home, tmp_path):
    own = berth_home / "known_hosts"
    own.write_text(f"@revoked [{sshd.host}]:{sshd.port} {pub(sshd)}\n")
    r = berth(capsys, "server", "add", "box", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
              "--key", sshd.key_path, "--root", tmp_path / "root", "--accept-host-key", sshd.fingerprint)
    assert r.code == 1 and "REVOKED" in r.err and f"{own}:1" in r.err, r
    assert own.read_text().count("\n") == 1  # nothing added
    assert [s["name"] for s in berth(capsys, "server", "list", "--json").json()] == ["local"]


def test_a_hashed_revoked_line_counts_and_another_hosts_does_not(capsys, box, user_ssh_dir):
    srv, _root = box
    known = user_ssh_dir / "known_hosts"
    known.write_text(f"@revoked other.example {pub(srv)}\n")  # revoked for another host only, as in OpenSSH
    assert berth(capsys, "server", "check", "box").code == 0
    hashed = user_ssh_dir / "hashed"
    hashed.write_text(f"[{srv.host}]:{srv.port} {pub(srv)}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hashed)], check=True, capture_output=True)
    known.write_text("@revoked " + hashed.read_text())
    r = berth(capsys, "server", "check", "box")
    assert r.code == 1 and "REVOKED" in r.err and f"{known}:1" in r.err, r


def test_a_cert_authority_is_named_when_the_key_is_refused(capsys, sshd, user_ssh_dir, tmp_path):
    known = user_ssh_dir / "known_hosts"
    known.write_text(f"@cert-authority *.example,[{sshd.host}]:* {pub(sshd)}\n")
    r = berth(capsys, "server", "add", "box", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
              "--key", sshd.key_path, "--root", tmp_path / "root")
    assert r.code == 1 and "not known" in r.err and f"{known}:1" in r.err and "certificates" in r.err, r


def test_known_hosts_patterns_as_openssh_reads_them():
    assert host_matches("a.example,*.prod", "db.PROD")
    assert host_matches("[127.0.0.1]:2222", "[127.0.0.1]:2222")
    assert not host_matches("[127.0.0.1]:2222", "[127.0.0.1]:2223")
    assert not host_matches("*.prod,!db.prod", "db.prod") and host_matches("*.prod,!db.prod", "web.prod")


def test_a_revoked_jump_host_key_stops_the_connection_at_that_hop(capsys, sshd_factory, user_ssh_dir, tmp_path):
    jump, target = sshd_factory(), sshd_factory()
    with open(target.authorized_keys_path, "a") as f:
        f.write(jump.pub_key_path.read_text())
    (user_ssh_dir / "config").write_text(
        f"Host jump\n    HostName {jump.host}\n    Port {jump.port}\n    User {jump.user}\n"
        f"    IdentityFile {jump.key_path}\n"
        f"Host far\n    HostName {target.host}\n    Port {target.port}\n    User {target.user}\n"
        f"    IdentityFile {jump.key_path}\n    ProxyJump jump\n")
    known = user_ssh_dir / "known_hosts"
    known.write_text(f"{jump.known_hosts_line()}\n{target.known_hosts_line()}\n")
    argv = ["server", "add", "far", "--ssh-alias", "far", "--root", tmp_path / "root"]
    assert berth(capsys, *argv).code == 0  # the route works while nothing is revoked
    known.write_text(known.read_text() + f"@revoked * {pub(jump)}\n")
    before_jump, before_target = logins(jump), logins(target)
    r = berth(capsys, *argv[:2], "far2", *argv[3:], "--accept-jump-key", jump.fingerprint)
    assert r.code == 1 and "jump host" in r.err and "REVOKED" in r.err and f"{known}:3" in r.err, r
    assert (logins(jump), logins(target)) == (before_jump, before_target)
