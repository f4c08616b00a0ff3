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
    if not url.startswith(("http://", "https://")):
        return {"ok": False, "status": "refused", "answer": "not an http(s) URL"}
    import urllib.error  # here, not at the top: the agent imports this module through the scheduler,
    import urllib.request  # and urllib.request brings http.client and ssl (tens of ms) to every command
    body = json.dumps(payload, sort_keys=True).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "berth-alerts/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return {"ok": 200 <= answer.status < 300, "status": "HTTP %d" % answer.status,
                    "answer": _text(answer.read(ANSWER_BYTES))}
    except urllib.error.HTTPError as e:
        try:
            said = _text(e.read(ANSWER_BYTES))
        except OSError:
            said = ""
        return {"ok": False, "status": "HTTP %d" % e.code, "answer": said}
    except urllib.error.URLError as e:
        return {"ok": False, "status": "unreachable", "answer": _text(str(e.reason).encode())}
    except (OSError, ValueError) as e:  # a timeout while reading, a bad port number
        return {"ok": False, "status": "unreachable", "answer": _text(("%s: %s" % (type(e).__name__, e)).encode())}


def _text(data):
    return data[:ANSWER_BYTES].decode("utf-8", "replace")
