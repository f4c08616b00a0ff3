"""Alerts into a real Prometheus Alertmanager (Debian's binary, on loopback, its own config and
storage): posted firing then resolved, read back through GET /api/v2/alerts."""
import copy

import pytest

from app.agent import alertmanager_send

try:
    from .mail_kit import Alertmanager, free_port, require_alertmanager  # type: ignore[import-not-found]
except ImportError:
    from mail_kit import Alertmanager, free_port, require_alertmanager

FIRING = {"version": "berth-alert/1", "status": "firing", "group": "s1", "server": "s1",
          "sent": "2026-12-01T14:00:00Z",
          "alerts": [{"rule": "slow", "model": "iris", "expr": "p95_ms>200", "state": "firing",
                      "since": "2026-12-01T13:58:00Z", "value": 250.5, "summary": "p95 250.5 ms > 200 ms for 2m"},
                     {"rule": "box-down", "model": None, "expr": "down", "state": "firing",
                      "since": "2026-12-01T13:59:30.250Z", "value": None, "summary": "s1 does not answer"}]}


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    require_alertmanager()
    with Alertmanager(tmp_path_factory.mktemp("alertmanager")) as am:
        yield am


def now_payload(payload, minutes_ago=2):
    """The payload as sent now (Alertmanager drops alerts whose endsAt is long past)."""
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    out = copy.deepcopy(payload)
    out["sent"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for alert in out["alerts"]:
        alert["since"] = (now - datetime.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def by_rule(alerts: list[dict], server="s1") -> dict:
    return {a["labels"]["berth_rule"]: a for a in alerts if a["labels"].get("server") == server}


def test_firing_then_resolved_read_back_from_alertmanager(alertmanager):
    firing = now_payload(FIRING)
    sent = alertmanager_send.send({"kind": "alertmanager", "url": alertmanager.url}, firing, 10)
    assert sent["ok"] and sent["status"] == "200", sent
    shown = by_rule(alertmanager.alerts())
    assert set(shown) == {"slow", "box-down"}
    slow, down = shown["slow"], shown["box-down"]
    assert slow["labels"] == {"alertname": "berth_p95_ms", "server": "s1", "model": "iris", "berth_rule": "slow"}
    assert slow["annotations"] == {"summary": "p95 250.5 ms > 200 ms for 2m", "expr": "p95_ms>200", "value": "250.5"}
    assert down["labels"] == {"alertname": "berth_down", "server": "s1", "berth_rule": "box-down"}
    assert down["annotations"] == {"summary": "s1 does not answer", "expr": "down"}
    assert slow["status"]["state"] == "active" and slow["startsAt"].startswith(firing["alerts"][0]["since"][:19])
    assert slow["receivers"] == [{"name": "sink"}]

    resolved = copy.deepcopy(firing)
    resolved["status"] = "resolved"
    resolved["alerts"] = [dict(resolved["alerts"][0], state="resolved")]
    sent = alertmanager_send.send({"kind": "alertmanager", "url": alertmanager.url + "/"}, resolved, 10)
    assert sent["ok"], sent
    assert set(by_rule(alertmanager.alerts())) == {"box-down"}  # Alertmanager lists only unresolved alerts


def test_a_test_alert_is_labelled_and_expires_by_itself(alertmanager):
    payload = now_payload(dict(FIRING, status="test", server="s-test", group="s-test",
                               alerts=[dict(FIRING["alerts"][0], rule="probe")]))
    assert alertmanager_send.send({"kind": "alertmanager", "url": alertmanager.url}, payload, 10)["ok"]
    (probe,) = by_rule(alertmanager.alerts(), "s-test").values()
    assert probe["labels"]["berth_test"] == "true"
    (posted,) = alertmanager_send.postable(payload)
    ends = alertmanager_send._parse_time(posted["endsAt"]) - alertmanager_send._parse_time(payload["sent"])
    assert ends.total_seconds() == 300  # five minutes ahead: a test leaves nothing behind for long


def test_alertmanager_that_is_down(alertmanager):
    port = free_port()  # nothing listens there
    sent = alertmanager_send.send({"kind": "alertmanager", "url": f"http://127.0.0.1:{port}"}, FIRING, 5)
    assert sent["ok"] is False and sent["status"] == "unreachable", sent
    assert f"cannot reach Alertmanager at http://127.0.0.1:{port}" in sent["answer"] and "refused" in sent["answer"]


def test_a_refused_post_reports_the_http_answer(alertmanager):
    sent = alertmanager_send.send({"kind": "alertmanager", "url": alertmanager.url + "/elsewhere"}, FIRING, 5)
    assert sent["ok"] is False and sent["status"] == "404", sent
    assert "refused the alerts: HTTP 404" in sent["answer"] and "\n" not in sent["answer"]


@pytest.mark.parametrize("url", ["am:9093", "ftp://am:9093", "http://", "http://am:9093/?x=1", None, 9093])
def test_a_bad_url_is_refused_before_any_connection(url):
    sent = alertmanager_send.send({"kind": "alertmanager", "url": url}, FIRING, 5)
    assert sent["ok"] is False and sent["status"] == "bad_channel" and "http" in sent["answer"], sent


def test_the_v2_body():
    posted = alertmanager_send.postable(FIRING)
    assert [p["startsAt"] for p in posted] == ["2026-12-01T13:58:00.000Z", "2026-12-01T13:59:30.250Z"]
    assert [p["endsAt"] for p in posted] == ["2026-12-02T14:00:00.000Z"] * 2  # held a day unless resolved
    resolved = alertmanager_send.postable(dict(FIRING, status="resolved"))
    assert [p["endsAt"] for p in resolved] == ["2026-12-01T14:00:00.000Z"] * 2
    assert "generatorURL" not in posted[0]
    assert alertmanager_send.alerts_url("https://am.example.com/prefix/") == \
        "https://am.example.com/prefix/api/v2/alerts"
    assert alertmanager_send.alertname({"expr": "disk_free_pct<10"}) == "berth_disk_free_pct"


@pytest.mark.parametrize("since, starts", [
    ("2026-12-01T13:59:30.25Z", "2026-12-01T13:59:30.250Z"),  # 2 digits: Python 3.8's fromisoformat refuses
    ("2026-12-01T15:59:30+02:00", "2026-12-01T13:59:30.000Z"),
    ("2026-12-01 13:59:30.123456", "2026-12-01T13:59:30.123Z"),  # no zone: UTC, as the payload's times are
    ("2026-12-01T08:29:30.5-05:30", "2026-12-01T13:59:30.500Z"),
    ("yesterday", "2026-12-01T14:00:00.000Z"),  # unreadable: the time it was sent
    ("2026-13-01T13:59:30Z", "2026-12-01T14:00:00.000Z"),
    (None, "2026-12-01T14:00:00.000Z"),
])
def test_start_times(since, starts):
    payload = dict(FIRING, alerts=[dict(FIRING["alerts"][0], since=since)])
    assert alertmanager_send.postable(payload)[0]["startsAt"] == starts


def test_alertmanager_that_does_not_answer():
    import socket

    with socket.socket() as listener:  # accepts the connection (the backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        sent = alertmanager_send.send({"kind": "alertmanager", "url": url}, FIRING, 0.5)
    assert sent == {"ok": False, "status": "timeout", "answer": f"Alertmanager at {url} did not answer in 0.5s"}
