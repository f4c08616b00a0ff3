"""The Alertmanager alert channel: POST {url}/api/v2/alerts, so a team that already routes, groups
and silences with Prometheus Alertmanager gets Berth's alerts there.

Runs on the server in the alert evaluator (stdlib only, Python 3.8+). The body is the v2 API's list
of postableAlert (api/v2/openapi.yaml): labels, annotations, startsAt, endsAt, generatorURL.
Alertmanager resolves an alert by itself once its endsAt has passed (or, without one, after its
resolve_timeout, 5 minutes by default). Berth posts only when something changes and at reminders,
so a firing alert carries an endsAt far enough ahead (HOLD) to stay active until Berth resolves
it, and a resolved one carries the time it resolved."""
import datetime
import http.client
import json
import re
import urllib.parse

from . import alerthttp
from .alertrules import shown_url

PATH = "/api/v2/alerts"
HOLD = datetime.timedelta(hours=24)  # a firing alert stays active this long if Berth goes silent
TEST_HOLD = datetime.timedelta(minutes=5)  # `berth alert test` leaves nothing behind for long
LABEL_RE = re.compile(r"[^A-Za-z0-9_]")
TIME_RE = re.compile(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?")
ANSWER_MAX = 200


def send(channel, payload, timeout):
    """Post `payload` (berth-alert/1) as Alertmanager alerts; -> {"ok", "status", "answer"}."""
    url = channel.get("url")
    try:
        endpoint = alerts_url(url)
    except ValueError as e:
        return _result(False, "bad_channel", str(e))
    shown = shown_url(url)  # a reverse proxy's token in the URL stays out of `berth alerts`
    data = json.dumps(postable(payload)).encode()
    try:
        status, text = alerthttp.post(endpoint, data, timeout, {"User-Agent": "berth-agent"})
    except alerthttp.Unreachable as e:
        if str(e).startswith("no answer"):
            return _result(False, "timeout", "Alertmanager at %s did not answer in %gs" % (shown, timeout))
        return _result(False, "unreachable", "cannot reach Alertmanager at %s: %s" % (shown, e))
    if 200 <= status < 300:
        return _result(True, "%d" % status, _answer(text.encode()))
    return _result(False, "%d" % status, "Alertmanager at %s refused the alerts: HTTP %d %s" % (
        shown, status, _answer(text.encode()) or http.client.responses.get(status, "")))


def _result(ok, status, answer):
    return {"ok": ok, "status": status, "answer": answer}


def _answer(raw):
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text if len(text) <= ANSWER_MAX else text[:ANSWER_MAX - 3] + "..."


def alerts_url(url):
    """http(s)://host[:port][/prefix] -> the v2 alerts endpoint under it; anything else refused."""
    if not isinstance(url, str):
        raise ValueError("the Alertmanager URL must be text such as http://am:9093")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("Alertmanager URL %r: use http(s)://HOST[:PORT][/PREFIX], e.g. http://am:9093"
                         % shown_url(url))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + PATH, "", ""))


def postable(payload):
    """The v2 API's list of postableAlert for a berth-alert/1 payload, one per alert in it."""
    sent = _parse_time(payload.get("sent")) or _now()
    status = payload.get("status")
    out = []
    for alert in payload.get("alerts") or []:
        resolved = alert.get("state") == "resolved" or status == "resolved"
        labels = {"alertname": alertname(alert), "server": str(payload.get("server") or ""),
                  "berth_rule": str(alert.get("rule") or "")}
        if alert.get("model"):
            labels["model"] = str(alert["model"])
        if alert.get("severity"):
            labels["severity"] = str(alert["severity"])
        if status == "test":
            labels["berth_test"] = "true"  # a route can send tests elsewhere; never mistaken for the real one
        value = alert.get("value")
        annotations = {"summary": str(alert.get("summary") or ""), "expr": str(alert.get("expr") or ""),
                       "value": "" if value is None else str(value)}
        starts = _parse_time(alert.get("since")) or sent
        if resolved:
            ends = max(sent, starts)
        else:
            ends = sent + (TEST_HOLD if status == "test" else HOLD)
        item = {"labels": {k: v for k, v in labels.items() if v != ""},
                "annotations": {k: v for k, v in annotations.items() if v != ""},
                "startsAt": _iso(starts), "endsAt": _iso(ends)}
        if payload.get("url"):
            item["generatorURL"] = str(payload["url"])
        out.append(item)
    return out


def alertname(alert):
    """`berth_down`, `berth_p95_ms`...: the rule's kind, so Alertmanager groups alike alerts of
    every server together; the operator's own name for the rule is the berth_rule label."""
    expr = str(alert.get("expr") or alert.get("rule") or "alert")
    kind = re.split(r"[<>=!\s]", expr, 1)[0] or "alert"
    return "berth_" + LABEL_RE.sub("_", kind)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _parse_time(text):
    """An ISO-8601 time (`Z` or an offset, any digits of a second) as an aware UTC datetime, or
    None. By hand: Python 3.8's fromisoformat takes neither `Z` nor 1, 2, 4 or 5 fraction digits."""
    match = TIME_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    when, fraction, zone = match.groups()
    try:
        moment = datetime.datetime.strptime(when.replace(" ", "T"), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    moment = moment.replace(microsecond=int((fraction or ".0")[1:7].ljust(6, "0")))
    offset = datetime.timedelta(0)
    if zone and zone != "Z":
        offset = datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * (1 if zone[0] == "+" else -1)
    return moment.replace(tzinfo=datetime.timezone(offset)).astimezone(datetime.timezone.utc)


def _iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)
