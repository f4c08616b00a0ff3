"""Where alerts live on the server, every file bounded so months unattended do not fill the disk:
    <root>/alerts/rules/<name>.json   a rule (written by agent commands, under the server lock)
                  silences.json       rule name -> {until, reason, by}
                  state.json          the evaluator's: each alert (rule x model or job) and the group
                  queue/<id>.json     a notification not yet delivered to one channel (retried)
                  history.jsonl       what was sent, and what each receiver answered (last HISTORY_KEEP)
                  eval.lock           flock held by whoever evaluates (one evaluation at a time)"""
import fcntl
import json
import os

from .fsutil import read_json, write_json_atomic, _unlink
from .layout import NAME_RE, AgentError
from .alertrules import check_rule_name

HISTORY_KEEP = 500
QUEUE_MAX = 200  # deliveries waiting; the oldest are dropped beyond this (a receiver down for days)


def folder(root):
    return os.path.join(root.path, "alerts")


def _path(root, *parts):
    return os.path.join(folder(root), *parts)


def rule_file(root, name):
    return _path(root, "rules", check_rule_name(name) + ".json")


def list_rules(root):
    try:
        names = sorted(n[:-5] for n in os.listdir(_path(root, "rules")) if n.endswith(".json"))
    except OSError:
        return []
    out = []
    for n in names:
        if NAME_RE.fullmatch(n):
            rule = read_json(_path(root, "rules", n + ".json"))
            if isinstance(rule, dict):
                out.append(rule)
    return out


def has_rules(root):
    return bool(list_rules(root))


def read_rule(root, name):
    rule = read_json(rule_file(root, name))
    if not isinstance(rule, dict):
        names = [r["name"] for r in list_rules(root)]
        raise AgentError("there is no alert %s on this server (%s)" % (
            name, "its alerts: " + ", ".join(names) if names else "it has none yet: berth alert add"), "no_alert")
    return rule


def write_rule(root, rule):
    os.makedirs(_path(root, "rules"), exist_ok=True)
    write_json_atomic(rule_file(root, rule["name"]), rule)


def remove_rule(root, name):
    _unlink(rule_file(root, name))
    silences = read_silences(root)
    if silences.pop(name, None) is not None:
        write_silences(root, silences)


def read_silences(root):
    s = read_json(_path(root, "silences.json"))
    return s if isinstance(s, dict) else {}


def write_silences(root, silences):
    os.makedirs(folder(root), exist_ok=True)
    write_json_atomic(_path(root, "silences.json"), silences)


def read_state(root):
    s = read_json(_path(root, "state.json"))
    if not isinstance(s, dict):
        s = {}
    s.setdefault("alerts", {})
    s.setdefault("group", {})
    return s


def write_state(root, state):
    os.makedirs(folder(root), exist_ok=True)
    write_json_atomic(_path(root, "state.json"), state)


def firing_count(root):
    """For `status`: cheap, one small file read."""
    return sum(1 for a in read_state(root)["alerts"].values() if a.get("state") == "firing")


def queue_dir(root):
    return _path(root, "queue")


def queued(root):
    try:
        names = sorted(os.listdir(queue_dir(root)))
    except OSError:
        return []
    out = []
    for n in names:
        if n.endswith(".json"):
            d = read_json(os.path.join(queue_dir(root), n))
            if isinstance(d, dict):
                out.append(d)
    return out


def enqueue(root, delivery):
    os.makedirs(queue_dir(root), exist_ok=True)
    write_json_atomic(os.path.join(queue_dir(root), delivery["id"] + ".json"), delivery)
    waiting = queued(root)
    for old in waiting[:max(0, len(waiting) - QUEUE_MAX)]:
        dequeue(root, old, dict(old, ok=False, answer="dropped: too many deliveries waiting"))


def update(root, delivery):
    write_json_atomic(os.path.join(queue_dir(root), delivery["id"] + ".json"), delivery)


def dequeue(root, delivery, outcome):
    _unlink(os.path.join(queue_dir(root), delivery["id"] + ".json"))
    record(root, outcome)


def record(root, entry):
    """One line of history; rewritten to its last HISTORY_KEEP lines when twice that long."""
    path = _path(root, "history.jsonl")
    os.makedirs(folder(root), exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    if os.path.getsize(path) > 4096 * 64:
        with open(path) as f:
            lines = f.readlines()
        if len(lines) > 2 * HISTORY_KEEP:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.writelines(lines[-HISTORY_KEEP:])
            os.replace(tmp, path)


def history(root, limit=50):
    try:
        with open(_path(root, "history.jsonl")) as f:
            lines = f.readlines()[-limit:]
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


class EvalLock:
    """One evaluation at a time on a root (the scheduler's thread, a test, `alert test`)."""

    def __init__(self, root):
        self.path = _path(root, "eval.lock")
        self.fd = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None
