"""The command line against a real OpenSSH server on loopback: host keys, the whole lifecycle,
and failures that must leave the previous release serving."""
import json
import re

import pytest

from agent_kit import stop_all
from app.agent.layout import Root
from app.agent.lock import ServerLock
from cli_kit import berth, break_model, iris_copy, iris_input


def add(capsys, srv, name="box", root=None, accept=None, key=None):
    argv = ["server", "add", name, "--host", srv.host, "--port", srv.port, "--user", srv.user,
            "--key", key or srv.key_path, "--root", root or str(srv.folder / "srv root")]
    if accept:
        argv += ["--accept-host-key", accept]
    return berth(capsys, *argv)


def accepted_logins(srv) -> int:
    return srv.log_path.read_text().count("Accepted publickey")


@pytest.fixture
def root(sshd, tmp_path):
    path = tmp_path / "it's a \"root\" with spaces"
    yield path
    stop_all(path)


def test_unknown_host_key_is_refused_and_named(capsys, sshd, berth_home):
    before = accepted_logins(sshd)
    r = add(capsys, sshd)
    assert r.code == 1
    assert sshd.fingerprint in r.err and "--accept-host-key" in r.err and "not known" in r.err
    assert accepted_logins(sshd) == before  # refused before any login
    assert [s["name"] for s in berth(capsys, "server", "list", "--json").json()] == ["local"]
    r = add(capsys, sshd, accept="SHA256:" + "A" * 43)
    assert r.code == 1 and "not known" in r.err
    events = berth(capsys, "audit", "list", "--json").json()
    assert {(e["action"], e["outcome"]) for e in events} == {("hostkey.refused", "failed"), ("server.add", "failed")}


def test_full_lifecycle_over_ssh_in_a_root_with_spaces_and_quotes(capsys, sshd, root, tmp_path):
    r = add(capsys, sshd, root=str(root), accept=sshd.fingerprint)
    assert r.code == 0, r
    r = berth(capsys, "server", "check", "box")
    assert r.code == 0 and re.search(r"Python 3\.\d+", r.out) and str(root) in r.out and "free disk" in r.out, r

    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box").code == 0
    r = berth(capsys, "predict", "iris", "--server", "box", "--input", iris_input())
    assert r.code == 0 and json.loads(r.out)[0]["class"] == "setosa", r
    assert berth(capsys, "deploy", iris_copy(tmp_path, "2.0.0"), "--server", "box").code == 0
    status = berth(capsys, "status", "--server", "box", "--json").json()
    assert [(s["server"], s["model"], s["version"], s["state"]) for s in status] == [("box", "iris", "2.0.0", "running")]

    r = berth(capsys, "rollback", "iris", "--server", "box")
    assert r.code == 0, r
    r = berth(capsys, "-v", "predict", "iris", "--server", "box", "--input", iris_input())
    assert r.code == 0 and "iris 1.0.0 answered" in r.err, r  # v1 answers again
    assert (root / "models" / "iris" / "current").resolve().name == "1.0.0"
    journal = [json.loads(l) for l in (root / "journal.jsonl").read_text().splitlines()]
    assert [(e["action"], e["outcome"]) for e in journal if e["outcome"] != "started"] == [
        ("deploy", "ok"), ("deploy", "ok"), ("rollback", "ok")]
    assert journal[-1]["actor"]["ssh_user"] == sshd.user and len(journal[0]["sha256"]) == 64

    r = berth(capsys, "deploy", break_model(iris_copy(tmp_path, "3.0.0")), "--server", "box")
    assert r.code == 1 and "broken on purpose" in r.err
    r = berth(capsys, "-v", "predict", "iris", "--server", "box", "--input", iris_input())
    assert r.code == 0 and "iris 1.0.0 answered" in r.err
    audit = berth(capsys, "audit", "list", "--server", "box", "--json").json()
    assert audit[0]["action"] == "deploy" and audit[0]["outcome"] == "failed" and audit[0]["ssh_user"] == sshd.user

    # the runner outlives the SSH sessions and a restart of the desktop: found again from its pid file
    r = berth(capsys, "status", "--server", "box", "--json")
    assert r.json()[0]["state"] == "running"


def test_a_second_deploy_while_the_server_is_locked(capsys, sshd, root, tmp_path):
    assert add(capsys, sshd, name="locked", root=str(root), accept=sshd.fingerprint).code == 0
    with ServerLock(Root(str(root)).ensure().lock, {"who": "bob@other-desk", "what": "deploy iris 9"}):
        r = berth(capsys, "deploy", iris_copy(tmp_path), "--server", "locked")
    assert r.code == 1 and "busy" in r.err and "bob@other-desk" in r.err and "since" in r.err, r
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "locked").code == 0


def test_changed_host_key_is_refused_always_and_nothing_is_sent(capsys, sshd_factory, tmp_path):
    srv = sshd_factory()
    root = tmp_path / "root"
    assert add(capsys, srv, root=str(root), accept=srv.fingerprint).code == 0
    old = srv.fingerprint
    new = srv.restart_with_new_host_key()
    before = accepted_logins(srv)
    for argv in (["server", "check", "box"], ["status", "--server", "box"],
                 ["deploy", iris_copy(tmp_path), "--server", "box"]):
        r = berth(capsys, *argv)
        assert r.code == 1 and "CHANGED" in r.err and new in r.err and old in r.err, r
    assert accepted_logins(srv) == before
    assert not any((root / "models").iterdir())  # the deploy never reached the server
    # --accept-host-key does not override a changed key either
    r = add(capsys, srv, name="again", root=str(root), accept=new)
    assert r.code == 1 and "CHANGED" in r.err
    r = berth(capsys, "server", "check", "box", "--accept-host-key", new)
    assert r.code == 1 and "CHANGED" in r.err
    # only a deliberate forget, then trusting the new fingerprint, lets Berth talk to it again
    assert berth(capsys, "server", "forget-key", "box").code == 0
    r = berth(capsys, "server", "check", "box")
    assert r.code == 1 and "not known" in r.err and new in r.err
    assert berth(capsys, "server", "check", "box", "--accept-host-key", new).code == 0
    assert berth(capsys, "server", "check", "box").code == 0
    actions = [e["action"] for e in berth(capsys, "audit", "list", "--json").json()]
    assert actions.count("hostkey.trust") == 2 and "hostkey.forget" in actions
    assert actions.count("hostkey.changed") == 5  # check, status, deploy, add, check --accept: each on record


def test_vanished_server_gives_a_clear_error(capsys, sshd_factory, tmp_path):
    srv = sshd_factory()
    assert add(capsys, srv, root=str(tmp_path / "r"), accept=srv.fingerprint).code == 0
    srv.stop()
    r = berth(capsys, "status", "--server", "box")
    assert r.code == 1 and "cannot reach" in r.err and str(srv.port) in r.err, r
    r = berth(capsys, "status", "--json")  # all servers: the reachable ones still listed
    assert r.code == 1 and json.loads(r.out) == [] and "box" in r.err


def test_wrong_key_says_what_was_tried(capsys, sshd, tmp_path):
    import subprocess
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    r = add(capsys, sshd, name="nokey", accept=sshd.fingerprint, key=str(other))
    assert r.code == 1 and "could not log in" in r.err and "rejected" in r.err and str(other) in r.err, r
    enc = tmp_path / "enc_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret-pass", "-f", str(enc)], check=True)
    r = add(capsys, sshd, name="enckey", accept=sshd.fingerprint, key=str(enc))
    assert r.code == 1 and "encrypted" in r.err and "s3cret" not in r.err, r


def test_production_can_require_a_reason(capsys, sshd, root, tmp_path):
    r = add(capsys, sshd, root=str(root), accept=sshd.fingerprint)
    assert r.code == 0
    assert berth(capsys, "server", "add", "prod", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
                 "--key", sshd.key_path, "--root", str(root), "--env", "production",
                 "--accept-host-key", sshd.fingerprint).code == 0
    r = berth(capsys, "settings", "set", "require_reason_production", "true")
    assert r.code == 0 and "false -> true" in r.out
    r = berth(capsys, "deploy", iris_copy(tmp_path), "--server", "prod")
    assert r.code == 1 and "give a reason" in r.err and "--reason" in r.err, r
    assert not (root / "models").exists() or not any((root / "models").iterdir())  # refused before anything
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box").code == 0  # not production: no reason
    r = berth(capsys, "deploy", iris_copy(tmp_path, "1.1.0"), "--server", "prod", "--reason", "CHG-1234 new data")
    assert r.code == 0, r
    events = berth(capsys, "audit", "list", "--json").json()
    assert [e["action"] for e in events if e["outcome"] == "failed"] == ["permission.denied"]
    assert {e["reason"] for e in events if e["server"] == "prod" and e["action"] == "deploy"} == {"CHG-1234 new data"}
    assert "settings.change" in {e["action"] for e in events}
    r = berth(capsys, "settings", "--json")
    assert r.json()[0] == {"key": "require_reason_production", "value": "true", "default": "false",
                           "meaning": r.json()[0]["meaning"]}
