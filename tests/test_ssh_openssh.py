"""~/.ssh/config resolved as OpenSSH resolves it: every case is asked of the real `ssh -G ALIAS -F
CONFIG` (openssh-client) and Berth's answer must be the same. Include globs are read from the
temp ~/.ssh (HOME points at a folder whose .ssh is $BERTH_SSH_DIR, for ssh only)."""
import shlex
import shutil
import subprocess

import pytest

from app.remote.sshconfig import SSHConfigError, is_known, list_aliases, resolve
from cli_kit import berth

CONFIG = """
Include conf.d/*.conf
Host web-*
    User webuser
    HostName %h.Example.COM
    Include web.d/extra.conf
Match host web-7.example.com user webuser
    Port 2207
Match originalhost db
    HostName DB.Internal
    User dbuser
Match host special exec "test -e /nonexistent-berth"
    Port 9
Host tokens
    HostName Tok.Example
    User tu
    Port 2022
    UserKnownHostsFile ~/kh/%h-%p-%r %d/%u/%n/%% /abs/%l/%L/%i/%C/%k
Host addr
    HostName FE80::1%%Eth0
Host first
    HostName First.Example
    Port 2001
Host bastion
    HostName bastion.example
    ProxyJump first
Host inner
    HostName inner.example
    ProxyJump bastion
Host app
    HostName app.example
    ProxyJump bastion,ops@inner:2201
    IdentityFile /keys/app_key
    IdentityFile /keys/app_key2
    IdentitiesOnly yes
    User = deploy
    ConnectTimeout=4
Host legacy
    ProxyCommand nc %h %p
    ProxyJump bastion
Host CaseSensitive
    Port 2444
Host *
    Port 2299
    ServerAliveInterval 7
"""
FILES = {
    "conf.d/a.conf": "Include nested/n.conf\nHost inc\n    HostName INC.example\n    User incuser\n"
                     "Include nested/n.conf\n",  # the second, inside Host inc, applies to inc only
    "conf.d/b.conf": "Host inc\n    User ignored-first-wins\n    Port 2333\n",
    "nested/n.conf": "Host nest\n    HostName nest.example\nHost inc\n    ConnectTimeout 5\n",
    "web.d/extra.conf": "IdentitiesOnly yes\nHost web-1\n    ConnectTimeout 3\n",
}
ALIASES = ["web-7", "web-1", "db", "tokens", "addr", "app", "bastion", "inner", "inc", "nest", "CaseSensitive",
           "casesensitive", "somewhere.else", "special"]


@pytest.fixture
def ssh_home(user_ssh_dir, tmp_path):
    """A HOME for `ssh` whose .ssh is the test's $BERTH_SSH_DIR, with CONFIG and its includes."""
    if shutil.which("ssh") is None:
        pytest.fail("ssh (openssh-client) is needed: it is the reference for these tests", pytrace=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".ssh").symlink_to(user_ssh_dir)
    (user_ssh_dir / "config").write_text(CONFIG)
    for name, text in FILES.items():
        (user_ssh_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (user_ssh_dir / name).write_text(text)
    return home


def ssh_G(home, alias) -> dict:
    out = subprocess.run(["ssh", "-G", alias, "-F", str(home / ".ssh" / "config")], capture_output=True,
                         text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, timeout=20, check=True).stdout
    values: dict = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key, []).append(value)
    return values


def berth_as_G(ep) -> dict:
    """Berth's Endpoint in `ssh -G`'s words, for the options Berth honours."""
    out = {"hostname": [ep.host], "user": [ep.user], "port": [str(ep.port)],
           "identitiesonly": ["yes" if ep.identities_only else "no"],
           "serveraliveinterval": [str(int(ep.server_alive_interval or 0))],
           "connecttimeout": [str(int(ep.connect_timeout)) if ep.connect_timeout else "none"]}
    if ep.known_hosts_files is not None:
        out["userknownhostsfile"] = [" ".join(ep.known_hosts_files)]
    if ep.identity_files:
        out["identityfile"] = list(ep.identity_files)
    return out


@pytest.mark.parametrize("alias", [a for a in ALIASES if a != "special"])
def test_each_alias_resolves_as_ssh_G_says(ssh_home, alias):
    want = ssh_G(ssh_home, alias)
    got = berth_as_G(resolve(alias))
    if "userknownhostsfile" not in got:  # not set: OpenSSH's default, where Berth reads ~/.ssh/known_hosts
        assert want["userknownhostsfile"][0].startswith("/") and "known_hosts" in want["userknownhostsfile"][0]
        del want["userknownhostsfile"]
    if "identityfile" not in got:  # not set: the defaults (Berth tries id_ed25519, id_ecdsa, id_rsa)
        del want["identityfile"]
    assert {k: want.get(k) for k in got} == got
    ep = resolve(alias)
    if "proxyjump" in want:
        assert ep.jumps and want["proxyjump"][0].split(",")[-1].rsplit(":")[0].split("@")[-1] == ep.jumps[-1].alias


def test_the_cases_in_words(ssh_home):
    """What the comparison above covers, said plainly (each would have failed before)."""
    assert resolve("web-7").port == 2207 and resolve("web-7").host == "web-7.example.com"  # Match host + user
    assert resolve("db").host == "db.internal" and resolve("db").user == "dbuser"  # Match originalhost, lowercased
    assert resolve("inc").port == 2333 and resolve("inc").user == "incuser"  # Include, glob order, first wins
    assert resolve("nest").host == "nest.example"  # nested Include, relative to ~/.ssh
    assert resolve("inc").connect_timeout == 5
    assert resolve("web-1").connect_timeout == 3 and resolve("web-1").identities_only  # Include inside Host
    assert not resolve("db").identities_only  # ...and only there
    assert resolve("addr").host == "FE80::1%Eth0"  # an address keeps its case, as in OpenSSH
    assert resolve("CaseSensitive").port == 2444 and resolve("casesensitive").port == 2299
    assert "inc" in list_aliases() and "nest" in list_aliases() and "web-*" not in list_aliases()


def test_a_match_exec_fails_only_the_alias_it_decides(ssh_home):
    assert ssh_G(ssh_home, "special")["port"] == ["2299"]  # ssh ran the command (false)
    with pytest.raises(SSHConfigError, match=r"Match exec.*config line 12\).*shell command"):
        resolve("special")
    assert resolve("app").host == "app.example"  # every other alias is unaffected


def implicit_route(home, alias) -> list[tuple[str, str | None, str | None]]:
    """The hops OpenSSH itself takes for `alias`, first hop first: from `ssh -vvv` connecting for real
    (every host is 127.0.0.1 port 1, refused at once), one "implicit ProxyCommand" line per level."""
    cfg = home / ".ssh" / "route"
    r = subprocess.run(["ssh", "-vvv", "-F", str(cfg), "-o", "BatchMode=yes", alias, "true"], capture_output=True,
                       text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, timeout=30)
    hops = []
    for line in r.stderr.splitlines():
        if "Setting implicit ProxyCommand from ProxyJump:" in line:
            argv = shlex.split(line.split(":", 2)[2])
            opts = dict(zip(argv[1:-1:], argv[2::]))
            hops.append((argv[-1], opts.get("-l"), opts.get("-p")))
    return hops[::-1]


def test_jump_hosts_with_their_own_proxyjump_are_routed_as_openssh_routes_them(ssh_home, user_ssh_dir):
    (user_ssh_dir / "route").write_text("""
Host bastion
    ProxyJump first
Host inner
    ProxyJump bastion
Host app
    ProxyJump bastion,ops@inner:2201
Host deep
    ProxyJump inner
Host *
    HostName 127.0.0.1
    Port 1
""")
    for alias in ("app", "deep", "inner"):
        want = implicit_route(ssh_home, alias)
        got = resolve(alias, user_ssh_dir / "route").jumps
        assert [h for h, _, _ in want] == [j.alias for j in got], alias
        for (h, user, port), j in zip(want, got):
            assert (user or j.user, int(port or j.port)) == (j.user, j.port)
    assert [j.alias for j in resolve("app", user_ssh_dir / "route").jumps] == ["first", "bastion", "inner"]


def test_a_proxycommand_host_is_listed_not_fatal(capsys, ssh_home):
    assert ssh_G(ssh_home, "legacy")["proxycommand"] == ["nc %h %p"]  # ProxyCommand came first: ProxyJump ignored
    with pytest.raises(SSHConfigError, match="ProxyCommand"):
        resolve("legacy")
    r = berth(capsys, "server", "aliases", "--json")
    assert r.code == 0, r
    rows = {row["alias"]: row for row in r.json()}
    assert "ProxyCommand" in rows["legacy"]["problem"] and rows["legacy"]["host"] == ""
    assert rows["app"]["problem"] == "" and rows["app"]["proxy_jump"].count("bastion.example") == 1
    assert "web-*" not in rows  # patterns are not listed...


def test_a_name_matched_only_by_a_pattern_is_an_alias(capsys, sshd, user_ssh_dir, tmp_path):
    (user_ssh_dir / "config").write_text(
        f"Host box-*\n    HostName {sshd.host}\n    Port {sshd.port}\n    User {sshd.user}\n"
        f"    IdentityFile {sshd.key_path}\n    IdentitiesOnly yes\nHost *\n    ServerAliveInterval 9\n")
    assert list_aliases() == [] and is_known("box-7") and not is_known("nope")  # ...but they are aliases
    r = berth(capsys, "server", "add", "b7", "--ssh-alias", "box-7", "--root", tmp_path / "root",
              "--accept-host-key", sshd.fingerprint)
    assert r.code == 0, r
    r = berth(capsys, "server", "add", "x", "--ssh-alias", "nope")
    assert r.code == 1 and "no Host 'nope'" in r.err


def test_user_known_hosts_file_of_the_alias_is_the_one_trusted(capsys, sshd, user_ssh_dir, tmp_path):
    kh = tmp_path / "team known hosts"
    kh.write_text(sshd.known_hosts_line() + "\n")
    (user_ssh_dir / "config").write_text(
        f"Host box\n    HostName {sshd.host}\n    Port {sshd.port}\n    User {sshd.user}\n"
        f"    IdentityFile {sshd.key_path}\n    UserKnownHostsFile /nonexistent/x \"{kh}\"\n")
    r = berth(capsys, "server", "add", "box", "--ssh-alias", "box", "--root", tmp_path / "root")
    assert r.code == 0, r  # trusted through the alias's file, not ~/.ssh/known_hosts


def test_identity_file_tokens_and_the_final_pass_as_ssh_expands_them(sshd, user_ssh_dir):
    """`ssh -G` prints IdentityFile unexpanded; ssh expands it when it connects, so the reference is
    a real connection to the loopback sshd (`-vvv` lists each "identity file"; BatchMode then
    stops at the unknown host key)."""
    cfg = user_ssh_dir / "config"
    cfg.write_text(f"""
Host idt
    HostName {sshd.host}
    Port {sshd.port}
    User Remote-User
    IdentityFile ~/k/%h-%p-%r-%u-%n-%d-%%
    IdentityFile /abs/%l/%L/%i/%C/%k
Match final
    IdentityFile /abs/final
    User ignored
Match canonical
    ConnectTimeout 6
""")
    r = subprocess.run(["ssh", "-vvv", "-F", str(cfg), "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=/dev/null",
                        "idt", "true"], capture_output=True, text=True, timeout=30)
    want = [line.split("identity file ", 1)[1].rsplit(" type ", 1)[0] for line in r.stderr.splitlines()
            if "debug1: identity file " in line and "-cert" not in line]
    ep = resolve("idt")
    assert want and list(ep.identity_files) == want
    g = subprocess.run(["ssh", "-G", "-F", str(cfg), "idt"], capture_output=True, text=True, timeout=20).stdout
    assert "user Remote-User\n" in g and "connecttimeout 6\n" in g  # the final pass: first values kept
    assert (ep.user, ep.connect_timeout) == ("Remote-User", 6.0)


def test_a_changed_key_names_the_alias_known_hosts_file_it_is_in(capsys, sshd, sshd_factory, user_ssh_dir, tmp_path):
    other = sshd_factory()
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("")
    second.write_text(f"[{sshd.host}]:{sshd.port} {other.host_public_key}\n")
    (user_ssh_dir / "config").write_text(
        f"Host box\n    HostName {sshd.host}\n    Port {sshd.port}\n    User {sshd.user}\n"
        f"    IdentityFile {sshd.key_path}\n    UserKnownHostsFile {first} {second}\n")
    r = berth(capsys, "server", "add", "box", "--ssh-alias", "box", "--root", tmp_path / "root",
              "--accept-host-key", sshd.fingerprint)
    assert r.code == 1 and "CHANGED" in r.err and f"-f {second}" in r.err, r
