"""Sending one notification to one channel: `send(channel, payload, timeout)` ->
{"ok", "status", "answer"}. A webhook is a JSON POST of the payload (docs/alerts.md) done here; e-mail
and Alertmanager are their own modules (alertmail.py, alertmanager_send.py), imported only when a
channel of theirs is used, and "unsupported" while an agent does not have them. Never raises."""
import importlib
import json

ANSWER_BYTES = 200
SENDERS = {"email": "alertmail", "alertmanager": "alertmanager_send"}
PACKAGE = __name__.rpartition(".")[0]


def send(channel, payload, timeout):
    kind = channel.get("kind") if isinstance(channel, dict) else None
    try:
        if kind == "webhook":
            return webhook(channel["url"], payload, timeout)
        module = SENDERS.get(kind)
        if module is None:
            return {"ok": False, "status": "unsupported", "answer": "unknown channel kind %r" % (kind,)}
        try:
            sender = importlib.import_module("%s.%s" % (PACKAGE, module))
        except ImportError:
            return {"ok": False, "status": "unsupported",
                    "answer": "this agent cannot send to %s yet (%s.py is missing)" % (kind, module)}
        return sender.send(channel, payload, timeout)
    except Exception as e:  # a sender's bug must not stop the evaluator: it is this delivery's failure
        return {"ok": False, "status": "error", "answer": ("%s: %s" % (type(e).__name__, e))[:ANSWER_BYTES]}


def webhook(url, payload, timeout):
    from . import alerthttp  # here, not at the top: http.client and ssl cost every agent command tens of ms
    body = json.dumps(payload, sort_keys=True).encode()
    try:
        status, said = alerthttp.post(url, body, timeout, {"User-Agent": "berth-alerts/1"})
    except alerthttp.Unreachable as e:
        return {"ok": False, "status": "unreachable", "answer": str(e)[:ANSWER_BYTES]}
    return {"ok": 200 <= status < 300, "status": "HTTP %d" % status, "answer": said}
