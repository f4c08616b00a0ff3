"""`berth server set-smtp` on the built-in local server, end to end: the password from stdin into
the keyring and into smtp.json (0600) on the server, audited, never in Berth's database or the
Remote activity log; a real relay then receives the alert mail."""
import io
import json
import stat
import sys

import pytest

from app.agent import alertmail

try:
    from .cli_kit import berth  # type: ignore[import-not-found]
    from .mail_kit import Relay, RelayCA  # type: ignore[import-not-found]
except ImportError:
    from cli_kit import berth
    from mail_kit import Relay, RelayCA

PASSWORD = "cli-Relay-pa55"
ACCOUNT = ("berth", "smtp-password:local")


@pytest.fixture
def ca(tmp_path):
    return RelayCA(tmp_path)


def set_smtp(capsys, monkeypatch, relay, ca, stdin="", *extra):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return berth(capsys, "server", "set-smtp", "local", "--host", "127.0.0.1", "--port", relay.port,
                 "--from", "berth@example.com", "--user", "alerts", "--ca-file", ca.ca_file, *extra)


def holding(folder, secret):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes())


def test_set_smtp_then_the_alert_mail_arrives(capsys, monkeypatch, berth_home, memory_keyring, ca):
    with Relay(ca, "starttls", "alerts", PASSWORD) as relay:
        r = set_smtp(capsys, monkeypatch, relay, ca, PASSWORD + "\n", "--password-stdin")
        assert r.code == 0, r
        assert r.out.strip() == (f"local: e-mail alerts go through the SMTP relay 127.0.0.1:{relay.port} (starttls) "
                                 "as alerts, from berth@example.com, company CA")
        assert memory_keyring.passwords[ACCOUNT] == PASSWORD
        r = set_smtp(capsys, monkeypatch, relay, ca)  # again, no stdin: the keyring's copy is used
        assert r.code == 0, r
        root = berth_home / "local"
        sent = alertmail.send({"kind": "email", "to": "ops@example.com"},
                              {"status": "test", "group": "local", "server": "local", "alerts": []}, 10,
                              root=str(root))
    assert sent["ok"], sent
    assert relay.mails[0]["message"]["Subject"] == "[Berth] TEST alert on local"
    assert stat.S_IMODE((root / ".berth" / "smtp.json").stat().st_mode) == 0o600
    assert holding(berth_home, PASSWORD) == ["local/.berth/smtp.json"]  # not the database, its WAL, any log

    assert berth(capsys, "audit", "sync").code == 0  # the server's journal names the same events: no copies
    events = berth(capsys, "audit", "list", "--json").json()
    smtp = [(e["action"], e["outcome"]) for e in events if "smtp" in e["action"]]
    assert sorted(smtp) == [("server.smtp", "ok"), ("server.smtp", "ok"), ("server.smtp", "started"),
                            ("server.smtp", "started")]
    activity = berth(capsys, "server", "activity", "local", "--json").json()
    mine = [a for a in activity if a["command"] == "alert_smtp_set"]
    assert len(mine) == 2 and all("password=<hidden: in the keyring>" in a["summary"] for a in mine)
    assert all('"password": "<hidden: in the keyring>"' in a["by_hand"] for a in mine)


def test_no_password_anywhere_is_one_line_saying_how(capsys, monkeypatch, berth_home, ca):
    with Relay(ca, "starttls", "alerts", PASSWORD) as relay:
        r = set_smtp(capsys, monkeypatch, relay, ca)
    assert r.code == 1 and r.out == ""
    assert r.err.strip().count("\n") == 0
    assert "no SMTP password for local in the keyring" in r.err and "--password-stdin" in r.err
    assert not (berth_home / "local" / ".berth" / "smtp.json").exists()


def test_a_refused_setting_changes_nothing_and_is_audited(capsys, monkeypatch, berth_home, memory_keyring):
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    r = berth(capsys, "server", "set-smtp", "local", "--host", "smtp.example.com", "--from", "berth@example.com",
              "--security", "none", "--user", "alerts", "--password-stdin")
    assert r.code == 1 and "loopback relay only, or with --allow-plaintext" in r.err, r
    assert not (berth_home / "local" / ".berth" / "smtp.json").exists()
    assert ACCOUNT not in memory_keyring.passwords  # kept only once the server took it
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    events = berth(capsys, "audit", "list", "--json").json()
    assert [e["outcome"] for e in events if e["action"] == "server.smtp"] == ["failed", "started"]
    r = berth(capsys, "server", "set-smtp", "local", "--host", "smtp.example.com", "--from", "berth@example.com",
              "--security", "none", "--allow-plaintext")
    assert r.code == 0 and "smtp.example.com:25 (none)" in r.out, r
    saved = json.loads((berth_home / "local" / ".berth" / "smtp.json").read_text())
    assert saved["allow_plaintext"] is True and saved["password"] == ""


@pytest.mark.parametrize("content, words", [
    (None, "cannot read it as a PEM file"),
    ("just text\n", "no PEM certificate in it"),
    ("x" * (300 * 1024), "over 256 KB"),
])
def test_a_bad_ca_file_is_refused_before_connecting(capsys, monkeypatch, tmp_path, content, words):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    r = berth(capsys, "server", "set-smtp", "local", "--host", "127.0.0.1", "--from", "berth@example.com",
              "--ca-file", path)
    assert r.code == 1 and words in r.err and f"--ca-file {path}" in r.err, r
    assert berth(capsys, "server", "activity", "local", "--json").json() == []


@pytest.mark.ssh
def test_set_smtp_over_ssh_keeps_the_password_in_the_servers_file_only(capsys, monkeypatch, sshd, tmp_path,
                                                                      berth_home, memory_keyring, ca):
    root = tmp_path / "srv root"
    r = berth(capsys, "server", "add", "box", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
              "--key", sshd.key_path, "--root", root, "--accept-host-key", sshd.fingerprint)
    assert r.code == 0, r
    with Relay(ca, "starttls", "alerts", PASSWORD) as relay:
        monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
        r = berth(capsys, "server", "set-smtp", "box", "--host", "127.0.0.1", "--port", relay.port,
                  "--from", "berth@example.com", "--user", "alerts", "--ca-file", ca.ca_file, "--password-stdin")
        assert r.code == 0 and "box: e-mail alerts go through the SMTP relay" in r.out, r
        sent = alertmail.send({"kind": "email", "to": "ops@example.com"},
                              {"status": "test", "group": "box", "server": "box", "alerts": []}, 10, root=str(root))
    assert sent["ok"] and relay.logins == ["alerts"], sent
    assert stat.S_IMODE((root / ".berth" / "smtp.json").stat().st_mode) == 0o600
    assert holding(root, PASSWORD) == [".berth/smtp.json"]
    assert holding(berth_home, PASSWORD) == []  # database, WAL, Remote activity: none has it
    assert PASSWORD not in sshd.log_path.read_text()
    assert memory_keyring.passwords[("berth", "smtp-password:box")] == PASSWORD
    r = berth(capsys, "server", "remove", "box")
    assert r.code == 0 and ("berth", "smtp-password:box") not in memory_keyring.passwords


def test_set_smtp_with_a_test_mail(capsys, monkeypatch, berth_home, ca):
    with Relay(ca, "starttls", "alerts", PASSWORD) as relay:
        r = set_smtp(capsys, monkeypatch, relay, ca, PASSWORD + "\n", "--password-stdin", "--test", "ops@example.com")
        assert r.code == 0, r
        assert r.out.splitlines()[-1] == ("local: test mail to ops@example.com: the relay answered 250 2.0.0 Ok: "
                                          "queued as BERTH1")
        r = set_smtp(capsys, monkeypatch, relay, ca, "wrong-one\n", "--password-stdin", "--test", "ops@example.com")
    assert r.code == 1 and r.err.strip().count("\n") == 0, r
    assert "the test mail to ops@example.com was not sent (auth_failed)" in r.err and "535" in r.err
    assert "wrong-one" not in r.err and "wrong-one" not in r.out
    (mail,) = relay.mails
    assert mail["message"]["Subject"] == "[Berth] TEST smtp-test on local" and mail["to"] == ["ops@example.com"]
    assert "firing smtp-test on local since " in mail["message"].get_content()
