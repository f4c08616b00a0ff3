"""E-mail alerts through a real SMTP relay (aiosmtpd on loopback): STARTTLS and TLS verified
against a test CA, AUTH, the relay's answer reported, and the password kept in smtp.json only."""
import copy
import os
import stat
from pathlib import Path

import pytest

from app.agent import alertmail

try:
    from .agent_kit import call  # type: ignore[import-not-found]
    from .mail_kit import Relay, RelayCA, free_port  # type: ignore[import-not-found]
except ImportError:
    from agent_kit import call
    from mail_kit import Relay, RelayCA, free_port

PASSWORD = "Corr3ct-h0rse-SMTP"
EMAIL = {"kind": "email", "to": "ops@example.com"}
PAYLOAD = {"version": "berth-alert/1", "status": "firing", "group": "s1/iris", "server": "s1",
           "sent": "2026-12-01T14:00:00Z",
           "alerts": [{"rule": "slow", "model": "iris", "expr": "p95_ms>200", "state": "firing",
                       "since": "2026-12-01T13:58:00Z", "value": 250.5,
                       "summary": "p95 latency 250.5 ms is over 200 ms for 2m"}]}


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return RelayCA(tmp_path_factory.mktemp("ca"))


def smtp_set(root: Path, **settings):
    return call(root, "alert_smtp_set", **settings)


def relay_settings(relay, ca, **extra):
    return dict({"host": "127.0.0.1", "port": relay.port, "from": "berth@example.com", "user": "alerts",
                 "password": PASSWORD, "ca_pem": ca.ca_pem}, **extra)


def files_holding(folder: Path, secret: str) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes():
            found.append(str(path.relative_to(folder)))
    return sorted(found)


def test_starttls_auth_mail_arrives_with_subject_and_body(tmp_path, ca):
    with Relay(ca, "starttls", "alerts", PASSWORD) as relay:
        result, error, _ = smtp_set(tmp_path, **relay_settings(relay, ca))
        assert error is None, error
        assert result["settings"]["password"] is True and PASSWORD not in str(result)
        sent = alertmail.send(EMAIL, PAYLOAD, 10, root=str(tmp_path))
    assert sent["ok"], sent
    assert sent["status"] == "250" and "queued as BERTH1" in sent["answer"]
    assert relay.logins == ["alerts"]
    (mail,) = relay.mails
    assert mail["from"] == "berth@example.com" and mail["to"] == ["ops@example.com"]
    message = mail["message"]
    assert message["Subject"] == "[Berth] FIRING p95_ms>200 on s1/iris"
    assert message["To"] == "ops@example.com" and message["From"] == "berth@example.com"
    text = message.get_content()
    assert message.get_content_type() == "text/plain"
    assert "firing slow: p95_ms>200 on s1/iris since 2026-12-01T13:58:00Z, value 250.5" in text
    assert "p95 latency 250.5 ms is over 200 ms for 2m" in text


def test_password_only_in_smtp_json_mode_0600(tmp_path, ca):
    with Relay(ca, "starttls", "alerts", PASSWORD) as relay:
        assert smtp_set(tmp_path, **relay_settings(relay, ca))[1] is None
        assert alertmail.send(EMAIL, PAYLOAD, 10, root=str(tmp_path))["ok"]
        bad = alertmail.send(EMAIL, PAYLOAD, 10, root=str(tmp_path / "nowhere"))
    smtp_json = tmp_path / ".berth" / "smtp.json"
    assert stat.S_IMODE(smtp_json.stat().st_mode) == 0o600
    assert files_holding(tmp_path, PASSWORD) == [".berth/smtp.json"]
    journal = (tmp_path / "journal.jsonl").read_text()
    assert '"server.smtp"' in journal and '"ok"' in journal and "127.0.0.1" in journal
    assert bad == {"ok": False, "status": "not_configured", "answer": bad["answer"]}
    assert "berth server set-smtp" in bad["answer"]


def test_a_second_set_replaces_the_file_atomically(tmp_path, ca):
    with Relay(ca, "starttls", "alerts", PASSWORD) as relay:
        assert smtp_set(tmp_path, **relay_settings(relay, ca, password="old-one"))[1] is None
        assert smtp_set(tmp_path, **relay_settings(relay, ca))[1] is None
        assert alertmail.send(EMAIL, PAYLOAD, 10, root=str(tmp_path))["ok"]
    assert files_holding(tmp_path, "old-one") == []
    assert sorted(p.name for p in (tmp_path / ".berth").iterdir() if p.name.startswith(".tmp")) == []


def test_wrong_password_is_one_clear_line_without_the_password(tmp_path, ca):
    wrong = "Wr0ng-pass-9"
    with Relay(ca, "starttls", "alerts", PASSWORD) as relay:
        smtp_set(tmp_path, **relay_settings(relay, ca, password=wrong))
        sent = alertmail.send(EMAIL, PAYLOAD, 10, root=str(tmp_path))
    assert not sent["ok"] and sent["status"] == "auth_failed", sent
    assert "\n" not in sent["answer"] and wrong not in sent["answer"]
    assert "refused the login of alerts: 535" in sent["answer"] and "berth server set-smtp" in sent["answer"]
    assert relay.mails == [] and relay.logins == []


def test_tls_from_the_start(tmp_path, ca):
    with Relay(ca, "tls", "alerts", PASSWORD) as relay:
        smtp_set(tmp_path, **relay_settings(relay, ca, security="tls"))
        sent = alertmail.send(EMAIL, PAYLOAD, 10, root=str(tmp_path))
    assert sent["ok"] and sent["status"] == "250", sent
    assert len(relay.mails) == 1 and relay.logins == ["alerts"]


def test_a_relay_with_an_unknown_ca_gets_neither_password_nor_mail(tmp_path, ca):
    with Relay(ca, "starttls", "alerts", PASSWORD) as relay:
        smtp_set(tmp_path, **relay_settings(relay, ca, ca_pem=""))  # the system's CAs only
        sent = alertmail.send(EMAIL, PAYLOAD, 10, root=str(tmp_path))
    assert not sent["ok"] and sent["status"] == "tls_untrusted", sent
    assert "not trusted" in sent["answer"] and "--ca-file" in sent["answer"]
    assert relay.mails == [] and relay.logins == []


def test_a_relay_without_starttls_gets_nothing_in_plain_text(tmp_path, ca):
    with Relay(None, "none") as relay:
        smtp_set(tmp_path, **relay_settings(relay, ca))
        sent = alertmail.send(EMAIL, PAYLOAD, 10, root=str(tmp_path))
    assert not sent["ok"] and sent["status"] == "no_starttls", sent
    assert "nothing was sent in plain text" in sent["answer"] and relay.mails == []
    assert sent["answer"].endswith("or --security none: it is on loopback"), sent  # what to do about it


def test_plain_smtp_to_a_loopback_relay(tmp_path):
    with Relay(None, "none") as relay:
        result, error, _ = smtp_set(tmp_path, host="localhost", port=relay.port, security="none",
                                    **{"from": "berth@example.com"})
        assert error is None, error
        sent = alertmail.send(EMAIL, dict(PAYLOAD, status="resolved"), 10, root=str(tmp_path))
    assert sent["ok"], sent
    assert relay.mails[0]["message"]["Subject"] == "[Berth] RESOLVED p95_ms>200 on s1/iris"


def test_a_relay_that_is_down(tmp_path, ca):
    port = free_port()  # nothing listens there
    smtp_set(tmp_path, host="127.0.0.1", port=port, **{"from": "berth@example.com"})
    sent = alertmail.send(EMAIL, PAYLOAD, 5, root=str(tmp_path))
    assert sent == {"ok": False, "status": "unreachable", "answer": sent["answer"]}
    assert f"cannot reach the SMTP relay 127.0.0.1:{port}" in sent["answer"] and "refused" in sent["answer"]


@pytest.mark.parametrize("settings, words", [
    ({"host": "smtp.example.com", "security": "none"}, "loopback relay only"),
    ({"host": "smtp example.com"}, "is not a host name"),
    ({"host": "smtp.example.com\nRCPT TO:<x@y>"}, "is not a host name"),
    ({"host": "smtp.example.com", "port": 70000}, "use 1-65535"),
    ({"host": "smtp.example.com", "port": 0}, "use 1-65535"),
    ({"host": "smtp.example.com", "port": True}, "use 1-65535"),
    ({"host": "[smtp.example.com]"}, "is not a host name"),
    ({"host": "-smtp.example.com"}, "is not a host name"),
    ({"host": None}, "is not a host name"),
    ({"host": "10.0.0.5", "security": "none"}, "loopback relay only"),
    ({"host": "smtp.example.com", "port": "25"}, "use 1-65535"),
    ({"host": "smtp.example.com", "security": "ssl"}, "use starttls, tls, none"),
    ({"host": "smtp.example.com", "from": "not-an-address"}, "is not an e-mail address"),
    ({"host": "smtp.example.com", "from": "a@b.c\r\nBcc: x@y.z"}, "is not an e-mail address"),
    ({"host": "smtp.example.com", "user": "alerts"}, "has no password"),
    ({"host": "smtp.example.com", "user": "al\nerts", "password": "x"}, "one line"),
    ({"host": "smtp.example.com", "ca_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"},
     "no usable PEM certificate"),
])
def test_bad_settings_are_refused_and_nothing_is_written(tmp_path, settings, words):
    request = dict({"from": "berth@example.com"}, **settings)
    result, error, _ = smtp_set(tmp_path, **request)
    assert result is None and error["code"] == "bad_smtp" and words in error["message"], error
    assert "\n" not in error["message"].strip()
    assert not (tmp_path / ".berth" / "smtp.json").exists()


@pytest.mark.parametrize("host, kept, loopback", [("[::1]", "::1", True), ("::1", "::1", True),
                                                  ("127.0.0.2", "127.0.0.2", True), ("LOCALHOST", "LOCALHOST", True),
                                                  ("2001:db8::25", "2001:db8::25", False),
                                                  ("smtp.example.com", "smtp.example.com", False)])
def test_hosts_and_which_are_loopback(tmp_path, host, kept, loopback):
    result, error, _ = smtp_set(tmp_path, host=host, security="none", allow_plaintext=not loopback,
                                user="", password="unused", **{"from": "berth@example.com"})
    assert error is None, error
    assert result["settings"]["host"] == kept and result["settings"].get("allow_plaintext", False) is not loopback
    assert files_holding(tmp_path, "unused") == []  # no user: no password kept


def test_plain_text_to_a_remote_relay_when_said_explicitly(tmp_path):
    result, error, _ = smtp_set(tmp_path, host="smtp.example.com", security="none", allow_plaintext=True,
                                **{"from": "berth@example.com"})
    assert error is None and result["settings"]["allow_plaintext"] is True and result["settings"]["port"] == 25


@pytest.mark.parametrize("to", ["", "ops", "a@b.c\nBcc: evil@x.y", None])
def test_a_bad_recipient_is_refused_before_any_connection(tmp_path, to):
    sent = alertmail.send({"kind": "email", "to": to}, PAYLOAD, 5, root=str(tmp_path))
    assert not sent["ok"] and sent["status"] == "bad_channel" and "is not an e-mail address" in sent["answer"]


def test_subject_of_several_alerts_and_a_newline_in_a_value():
    payload = copy.deepcopy(PAYLOAD)
    payload["group"] = "s1\r\nBcc: evil@example.com"
    payload["alerts"].append(dict(payload["alerts"][0], rule="down", expr="down", value=None))
    payload["alerts"].append(dict(payload["alerts"][0], rule="slow2"))
    assert alertmail.subject(payload) == "[Berth] FIRING p95_ms>200, down on s1 Bcc: evil@example.com"
    message = alertmail.build_message(payload, "berth@example.com", "ops@example.com")
    assert message["Bcc"] is None and message["Message-ID"].endswith("@example.com>")
    assert alertmail.subject(dict(payload, alerts=[dict(payload["alerts"][0], expr="x" * 500)])).endswith("...")


def test_smtp_json_is_readable_by_the_agent_user_only_even_with_a_loose_umask(tmp_path, ca):
    old = os.umask(0o000)
    try:
        smtp_set(tmp_path, host="127.0.0.1", port=2525, user="alerts", password=PASSWORD,
                 **{"from": "berth@example.com"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / ".berth" / "smtp.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / ".berth").stat().st_mode) & 0o077 == 0


def test_a_relay_that_does_not_answer(tmp_path):
    import socket

    with socket.socket() as listener:  # the connection is made (the backlog), no greeting ever comes
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        smtp_set(tmp_path, host="127.0.0.1", port=port, **{"from": "berth@example.com"})
        sent = alertmail.send(EMAIL, PAYLOAD, 0.5, root=str(tmp_path))
    assert sent == {"ok": False, "status": "timeout",
                    "answer": f"the SMTP relay 127.0.0.1:{port} did not answer in time"}


def test_a_refused_recipient_reports_the_relays_answer(tmp_path, ca):
    with Relay(ca, "starttls", "alerts", PASSWORD, unknown=("ops@example.com",)) as relay:
        smtp_set(tmp_path, **relay_settings(relay, ca))
        sent = alertmail.send(EMAIL, PAYLOAD, 10, root=str(tmp_path))
    assert not sent["ok"] and sent["status"] == "refused", sent
    assert sent["answer"] == (f"the SMTP relay 127.0.0.1:{relay.port} refused the recipient ops@example.com: 550 "
                              "5.1.1 <ops@example.com>: Recipient address rejected: User unknown")
    assert relay.mails == []


@pytest.mark.parametrize("request_, expected", [
    ({"to": "ops@example.com", "timeout": 500}, "error: timeout must be a number of seconds, at most 120"),
    ({"to": "ops@example.com", "timeout": "5"}, "error: timeout must be a number of seconds, at most 120"),
    ({"to": "ops"}, "bad_channel"),
    ({"to": "ops@example.com"}, "not_configured"),
])
def test_the_agents_test_mail_command_refuses_bad_requests(tmp_path, request_, expected):
    result, error, _ = call(tmp_path, "alert_smtp_test", **request_)
    if expected.startswith("error: "):
        assert result is None and error["message"] == expected[7:] and error["code"] == "usage"
    else:
        assert error is None and result["ok"] is False and result["status"] == expected
