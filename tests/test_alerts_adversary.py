"""Alerts against what no issue lists: receivers that redirect, trickle, flood or hang; an SMTP relay
that offers STARTTLS and then refuses it; webhook tokens in URLs; broken state, rule and silence
files; a clock set back; odd names, reasons and durations; thousands of rules. Real agent roots,
real sockets on loopback, the evaluator's rounds on the injected clock."""
import json
import os
import socket
import stat
import threading
import time
from datetime import datetime, timezone

import pytest

from agent_kit import call
from alerts_kit import Receiver, add_rule, later
from app.agent import alerteval, alerthttp, alertmail, alertmanager_send, alertsend, alertstore, scheduler
from app.agent.alertrules import parse_duration, parse_notify, shown_url
from app.agent.layout import AgentError, Root
from jobs_kit import FakeClock, cleanup

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)
SLACK = "https://hooks.slack.com/services/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"
TOKEN = "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"
PAYLOAD = {"version": "berth-alert/1", "status": "firing", "group": "s", "server": "s", "sent": "2026-03-02T03:00:00Z",
           "alerts": [{"rule": "r", "model": None, "expr": "down", "state": "firing", "since": "2026-03-02T03:00:00Z",
                       "value": None, "summary": "x"}]}


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "srv"
    yield r
    cleanup(r)


@pytest.fixture
def clock(tmp_path, monkeypatch):
    return FakeClock(tmp_path / "now.txt", monkeypatch, T0)


@pytest.fixture
def hook():
    r = Receiver()
    yield r
    r.stop()


class RawServer:
    """A TCP server on loopback whose every connection is `handle(conn)` in a thread; `seen` holds
    what each connection sent (bytes), so a test can check what reached it."""

    def __init__(self, handle):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.handle, self.seen, self.conns, self.stopped = handle, [], [], False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            self.handle(self, conn)
        except OSError:
            pass

    def read_request(self, conn):
        data = b""
        conn.settimeout(5)
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        self.seen.append(data)
        return data

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def rounds(root):
    scheduler.stop(Root(str(root)))
    return alerteval.Evaluator(Root(str(root)))


def state(root):
    result, error, _ = call(root, "alert_state")
    assert error is None, error
    return result


# -- receivers that misbehave ------------------------------------------------------------------

def test_a_redirect_to_another_host_is_not_followed(hook):
    def redirect(server, conn):
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + hook.url.encode() +
                     b"\r\nContent-Length: 0\r\n\r\n")
    srv = RawServer(redirect)
    try:
        said = alertsend.send({"kind": "webhook", "url": f"http://127.0.0.1:{srv.port}/x"}, PAYLOAD, 5)
        am = alertmanager_send.send({"kind": "alertmanager", "url": f"http://127.0.0.1:{srv.port}"}, PAYLOAD, 5)
    finally:
        srv.close()
    assert said["ok"] is False and said["status"] == "HTTP 307", said
    assert "redirected to http://127.0.0.1: not followed; give the receiver's final URL" in said["answer"]
    assert am["ok"] is False and am["status"] == "307" and "not followed" in am["answer"], am
    assert hook.posts == []  # the body never went to where the redirect pointed


def test_a_receiver_answering_one_byte_a_second_is_cut_at_the_deadline():
    def trickle(server, conn):
        server.read_request(conn)
        for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100:
            conn.sendall(bytes([b]))
            time.sleep(1)
    srv = RawServer(trickle)
    try:
        started = time.monotonic()
        said = alertsend.send({"kind": "webhook", "url": f"http://127.0.0.1:{srv.port}/x"}, PAYLOAD, 2)
        took = time.monotonic() - started
    finally:
        srv.close()
    assert said == {"ok": False, "status": "unreachable", "answer": "no answer within 2s"}, said
    assert took < 4, took  # urllib's per-read timeout waited as long as the bytes kept coming


def test_an_answer_of_100_mb_that_never_ends_is_read_200_bytes_of():
    def flood(server, conn):
        server.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        chunk = b"z" * 65536
        for _ in range(1600):  # 100 MB, and then the connection is held open
            conn.sendall(chunk)
        time.sleep(30)
    srv = RawServer(flood)
    try:
        started = time.monotonic()
        said = alertsend.send({"kind": "webhook", "url": f"http://127.0.0.1:{srv.port}/x"}, PAYLOAD, 3)
        took = time.monotonic() - started
    finally:
        srv.close()
    assert said["ok"] is True and said["status"] == "HTTP 200" and said["answer"] == "z" * 200, said
    assert took < 2, took


def test_a_receiver_that_accepts_and_never_answers():
    srv = RawServer(lambda server, conn: (server.read_request(conn), time.sleep(30)))
    try:
        said = alertsend.send({"kind": "webhook", "url": f"http://127.0.0.1:{srv.port}/x"}, PAYLOAD, 1)
        am = alertmanager_send.send({"kind": "alertmanager", "url": f"http://127.0.0.1:{srv.port}"}, PAYLOAD, 1)
    finally:
        srv.close()
    assert said == {"ok": False, "status": "unreachable", "answer": "no answer within 1s"}, said
    assert am["status"] == "timeout" and "did not answer in 1s" in am["answer"], am


@pytest.mark.parametrize("target", ["webhook:file:///etc/passwd", "webhook:http+unix://%2Frun%2Fx.sock/hook",
                                    "alertmanager:unix:/run/am.sock", "webhook:ftp://h/x", "webhook:http:///x",
                                    "webhook:javascript:alert(1)"])
def test_urls_that_are_not_http_to_a_host_are_refused(target):
    with pytest.raises(AgentError) as e:
        parse_notify(target)
    assert "must start with http:// or https:// and name a host" in str(e.value)
    with pytest.raises(alerthttp.Unreachable):
        alerthttp.post(target.partition(":")[2], b"{}", 1)


def test_a_hanging_receiver_does_not_hold_a_round_of_many_deliveries(root):
    srv = RawServer(lambda server, conn: (server.read_request(conn), time.sleep(30)))
    hanging = {"kind": "webhook", "url": f"http://127.0.0.1:{srv.port}/x"}
    r = Root(str(root))
    try:
        for i in range(20):
            at = "2026-03-02T03:00:00Z"
            alertstore.enqueue(r, {"id": "d%02d" % i, "channel": hanging, "payload": PAYLOAD, "alerts": [],
                                   "attempts": 0, "created": at, "next_try": at})
        started = time.monotonic()
        alerteval.deliver(r, {"alerts": {}, "group": {}}, T0, timeout=1)
        took = time.monotonic() - started
    finally:
        srv.close()
    assert took < 3, took  # one try for the channel, not 20 x the timeout
    tried = [d for d in alertstore.queued(r) if d["attempts"]]
    assert len(tried) == 1 and len(alertstore.queued(r)) == 20


def test_a_relay_that_offers_starttls_then_refuses_it_never_sees_the_password(tmp_path):
    def relay(server, conn):
        f = conn.makefile("rwb")
        f.write(b"220 fake ESMTP\r\n")
        f.flush()
        got = []
        server.seen.append(got)
        for line in f:
            got.append(line)
            verb = line.split(b" ")[0].strip().upper()
            if verb == b"EHLO":
                f.write(b"250-fake\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n")
            elif verb == b"STARTTLS":
                f.write(b"454 4.7.0 TLS not available due to temporary reason\r\n")
            elif verb == b"QUIT":
                f.write(b"221 bye\r\n")
                f.flush()
                return
            else:
                f.write(b"250 ok\r\n")
            f.flush()
    srv = RawServer(relay)
    secret = "S3cret-relay-pw"
    try:
        settings = {"host": "127.0.0.1", "port": srv.port, "from": "berth@example.com", "security": "starttls",
                    "user": "alerts", "password": secret, "ca_pem": ""}
        said = alertmail.send({"kind": "email", "to": "ops@example.com", "settings": settings}, PAYLOAD, 5)
    finally:
        srv.close()
    sent = b"".join(line for got in srv.seen for line in got)
    assert said["ok"] is False and said["status"] == "refused" and "454" in said["answer"], said
    assert b"AUTH" not in sent.upper() and secret.encode() not in sent and b"MAIL FROM" not in sent.upper()
    assert secret not in json.dumps(said)


# -- secrets -----------------------------------------------------------------------------------

def test_a_webhook_token_is_never_shown_nor_journalled_and_every_file_is_the_agents(root, clock):
    os.umask(0o022)
    result, error, _ = add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{SLACK}"])
    assert error is None, error
    assert TOKEN not in json.dumps(result) and "hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/***" in result["detail"]
    ev = rounds(root)
    ev.tick(T0)  # the receiver does not exist: unreachable, queued, retried
    listed, error, _ = call(root, "alert_list")
    tested, error2, _ = call(root, "alert_test", name="disk")
    assert error is None and error2 is None
    shown = json.dumps([listed, state(root), tested])
    assert TOKEN not in shown and "hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/*** (" in shown
    assert TOKEN not in (root / "journal.jsonl").read_text()
    assert TOKEN not in (root / "alerts" / "history.jsonl").read_text()
    holders = [p for p in (root / "alerts").rglob("*") if p.is_file() and TOKEN in p.read_text(errors="replace")]
    assert holders  # the rule and the queued delivery must keep the URL to send to it
    for p in (root / "alerts").rglob("*"):
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    assert stat.S_IMODE((root / "alerts").stat().st_mode) == 0o700
    ev.close()


@pytest.mark.parametrize("url,shown", [
    ("http://127.0.0.1:9/hook", "http://127.0.0.1:9/hook"),
    ("http://am:9093/prefix", "http://am:9093/prefix"),
    ("https://u:pw@h.example/x", "https://***@h.example/x ("),
    ("https://h.example/x?token=abc&room=2", "https://h.example/x?token=***&room=*** ("),
    ("https://discord.com/api/webhooks/123456789012345678/abcDEF123ghiJKL456mnoPQR789",
     "https://discord.com/api/webhooks/123456789012345678/*** ("),
    ("https://hooks.slack.com/services/T0/B0/ABCDEFGHIJKLMNOPQRSTUVWX", "https://hooks.slack.com/services/T0/B0/*** ("),
])
def test_what_of_a_url_is_shown(url, shown):
    assert shown_url(url).startswith(shown) and ("(" in shown) == ("(" in shown_url(url))
    assert shown_url(url) != shown_url(url + "0") or "(" not in shown  # two URLs stay apart


def test_a_refused_target_does_not_echo_its_token(root):
    _, error, _ = add_rule(root, "disk", "down", [f"webhook:{SLACK} x"])
    assert error and TOKEN not in error["message"] and "no spaces" in error["message"], error


# -- broken files, a clock set back ------------------------------------------------------------

@pytest.mark.parametrize("content", ["{\"alerts\": {\"disk\": ", "[]", "{\"alerts\": []}",
                                     "{\"alerts\": {\"disk\": \"firing\"}, \"group\": {}}",
                                     "{\"alerts\": {\"disk\": {\"rule\": \"disk\", \"state\": \"firing\"}}}"])
def test_a_broken_state_file_is_set_aside_and_the_evaluator_goes_on(root, clock, hook, content):
    assert add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{hook.url}"])[1] is None
    ev = rounds(root)
    (root / "alerts").mkdir(exist_ok=True)
    (root / "alerts" / "state.json").write_text(content)
    listed = state(root)  # `berth alerts` works while it is broken
    assert listed["alerts"] == [] and any("state file" in p for p in listed["evaluator"]["problems"]), listed
    ev.tick(T0)
    assert hook.statuses() == ["firing"]
    assert any("state file" in p for p in ev.problems), ev.problems
    if content.startswith("{\"alerts\": {\"disk\": ") and content.endswith("}}"):
        assert "unusable alert" in ev.problems[0]
    else:
        assert (root / "alerts" / "state.json.bad").read_text() == content
    ev.tick(later(T0, 10))
    assert ev.problems == [] and state(root)["evaluator"]["problems"] == []
    ev.close()


def test_a_broken_rule_file_is_skipped_and_named_the_others_still_fire(root, clock, hook):
    assert add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{hook.url}"])[1] is None
    (root / "alerts" / "rules" / "cut.json").write_text("{\"name\": \"cut\", \"ki")
    odd = {"name": "odd", "expr": "p95_ms>5", "kind": "down", "notify": [{"kind": "webhook", "url": hook.url}]}
    (root / "alerts" / "rules" / "odd.json").write_text(json.dumps(odd))
    ev = rounds(root)
    ev.tick(T0)
    assert hook.statuses() == ["firing"]
    assert any("cut.json is skipped" in p for p in ev.problems) and any("odd.json is skipped" in p for p in ev.problems)
    problems = state(root)["evaluator"]["problems"]
    assert any("cut.json" in p for p in problems), problems
    ev.close()


@pytest.mark.parametrize("silence", [{"until": "not a time", "reason": "x"}, {"until": 12, "reason": "x"}, "x"])
def test_a_broken_silence_does_not_stop_a_round(root, clock, hook, silence):
    assert add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{hook.url}"])[1] is None
    (root / "alerts" / "silences.json").write_text(json.dumps({"disk": silence}))
    ev = rounds(root)
    ev.tick(T0)
    assert hook.statuses() == ["firing"]  # an unreadable silence silences nothing
    listed, error, _ = call(root, "alert_list")
    assert error is None and listed["rules"][0]["silenced_until"] is None, (listed, error)
    ev.close()


def test_a_clock_set_back_an_hour_does_not_hold_alerts_for_an_hour(root, clock, hook):
    assert add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{hook.url}"])[1] is None
    ev = rounds(root)
    ev.tick(T0)
    assert hook.statuses() == ["firing"]
    assert add_rule(root, "slow", "down", [f"webhook:{hook.url}"], for_="1m")[1] is None
    assert add_rule(root, "mem", "memory_pct>0", [f"webhook:{hook.url}"], for_="1m")[1] is None
    back = later(T0, -3600)
    ev.tick(back)
    assert any("clock went back" in p for p in ev.problems), ev.problems
    ev.tick(later(back, 60))
    assert state(root)["alerts"][0]["state"] == "firing"
    ev.tick(later(back, 300))  # the group interval from the moment the clock went back, not from T0
    assert hook.statuses() == ["firing", "firing"], hook.statuses()
    ev.close()


# -- odd input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text,says", [("-1m", "is not a duration"), ("2x", "is not a duration"),
                                       ("1.5m", "is not a duration"), ("9" * 10000 + "s", "is not a duration"),
                                       ("8d", "must be from 0s to 7d"), (float("nan"), "is not a number"),
                                       (-5, "must be from 0s to 7d"), (" ", "is not a duration")])
def test_bad_for_is_one_short_line(text, says):
    with pytest.raises(AgentError) as e:
        parse_duration(text)
    assert says in str(e.value) and len(str(e.value)) < 300 and "\n" not in str(e.value), str(e.value)


def test_for_zero_fires_at_the_first_round(root, clock, hook):
    assert parse_duration("0") == 0 and parse_duration("0s") == 0
    assert add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{hook.url}"], for_="0")[1] is None
    ev = rounds(root)
    ev.tick(T0)
    assert hook.statuses() == ["firing"]
    ev.close()


@pytest.mark.parametrize("name", ["a;rm -rf ~", "a$(id)", "a`id`", "a\nb", "ä-alert", "a" * 10240, "-a", "A", ""])
def test_odd_rule_names_are_refused_in_one_short_line(root, name):
    _, error, _ = add_rule(root, name, "down", ["webhook:http://127.0.0.1:9/x"])
    assert error and "invalid alert name" in error["message"], error
    assert len(error["message"]) < 300 and "\n" not in error["message"]
    assert not (root / "alerts" / "rules").exists() or list((root / "alerts" / "rules").iterdir()) == []


def test_a_10_kb_expression_is_refused_without_being_echoed_whole(root):
    _, error, _ = add_rule(root, "disk", "p95_ms>" + "9" * 10240, ["webhook:http://127.0.0.1:9/x"])
    assert error and "must be 0 to 3.6e+06" in error["message"] and len(error["message"]) < 300, error


@pytest.mark.parametrize("reason,ok", [("a\nb", False), ("bell\x07", False), ("x" * 501, False),
                                       ("déploiement; $(rm -rf /) `id` 'quoted' \"too\" 🚀", True)])
def test_silence_reasons(root, hook, reason, ok):
    assert add_rule(root, "disk", "down", [f"webhook:{hook.url}"])[1] is None
    result, error, _ = call(root, "alert_silence", name="disk", reason=reason, **{"for": "1h"})
    if ok:
        assert error is None and result["rule"]["silence_reason"] == reason, error
    else:
        assert result is None and "reason" in error["message"] and "\n" not in error["message"], error
        assert alertstore.read_silences(Root(str(root))) == {}


def test_thousands_of_rules_are_one_quick_round_and_one_notification(root, clock, hook):
    r = Root(str(root))
    assert add_rule(root, "r0", "disk_free_pct<100", [f"webhook:{hook.url}"])[1] is None
    ev = rounds(root)  # the scheduler stopped first: its own round must not race the writes
    rule = alertstore.read_rule(r, "r0")
    for i in range(1, 2000):
        alertstore.write_rule(r, dict(rule, name="r%d" % i))
    started = time.monotonic()
    ev.tick(T0)
    took = time.monotonic() - started
    assert hook.statuses() == ["firing"] and len(hook.posts[0]["alerts"]) == 2000
    assert took < 10, took
    print("2000 rules: first round %.2f s" % took)
    started = time.monotonic()
    ev.tick(later(T0, 10))
    assert time.monotonic() - started < 10
    ev.close()


def test_two_desktops_adding_rules_at_once_lose_nothing(root, hook):
    """The server lock takes one change at a time: each add is made or refused in one clear line
    (`locked`, try again), and every add that was answered ok is there afterwards."""
    assert add_rule(root, "first", "down", [f"webhook:{hook.url}"])[1] is None
    made, refused = ["first"], []

    def add(i):
        _, error, _ = add_rule(root, "r%d" % i, "down", [f"webhook:{hook.url}"])
        (refused if error else made).append(error or "r%d" % i)
    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(e["code"] == "locked" and "try again" in e["message"] for e in refused), refused
    assert sorted(x["name"] for x in alertstore.list_rules(Root(str(root)))) == sorted(made)
    assert len(made) >= 2


def test_a_webhook_token_is_in_no_file_of_the_desktop(berth_home):
    """The CLI's path: the remote activity log (SQLite) and the audit log keep the rule's request
    and outcome; the token is in neither (nor the WAL), only in the server's 0600 rule file."""
    from app.workspace import Workspace

    root = berth_home / "local"
    ws = Workspace()
    try:
        with ws.connect("local") as t:  # as the CLI connects: its agent calls go to the activity log
            ws.alert_change(t, "add", "disk", None, {"when": "disk_free_pct<10", "for": 0, "repeat": 14400,
                                                      "notify": [{"kind": "webhook", "url": SLACK}], "model": None})
            ws.alert_change(t, "remove", "disk", None)
        ws.close()
        held = [str(p.relative_to(berth_home)) for p in berth_home.rglob("*")
                if p.is_file() and TOKEN.encode() in p.read_bytes()]
        assert held == [], held
    finally:
        cleanup(root)


def test_a_receiver_down_for_an_hour_backoff_and_files_stay_bounded(root, clock):
    from alerts_kit import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    assert add_rule(root, "disk", "disk_free_pct<100", [f"webhook:{url}"], repeat="20m")[1] is None
    ev = rounds(root)
    for s in range(0, 3600, 30):
        ev.tick(later(T0, s))
    queued = alertstore.queued(Root(str(root)))
    assert len(queued) == 3  # the firing and two reminders (20 m), waiting in order, none lost
    first = queued[0]
    assert 10 <= first["attempts"] <= 16, first["attempts"]  # 10 s, 20 s ... then every 10 minutes
    wait = (datetime.fromisoformat(first["next_try"].replace("Z", "+00:00")) - later(T0, 3570)).total_seconds()
    assert 0 <= wait <= alerteval.BACKOFF_MAX_S
    assert (root / "alerts" / "state.json").stat().st_size < 4096
    assert not (root / "alerts" / "history.jsonl").exists()  # a delivery's history is written once, when it ends
    [a] = state(root)["alerts"]
    assert a["notified"][0]["ok"] is False and "connection refused" in a["notified"][0]["answer"], a
    hook = Receiver()
    hook.stop()
    hook.port = port
    hook.start()
    try:
        for s in range(3600, 3600 + 660, 30):
            ev.tick(later(T0, s))
        assert hook.statuses() == ["firing", "reminder", "reminder", "reminder"], hook.statuses()  # in order
        assert alertstore.queued(Root(str(root))) == []
    finally:
        hook.stop()
    ev.close()
