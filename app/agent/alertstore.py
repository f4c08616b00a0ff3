"""Where alerts live on the server, every file bounded so months unattended do not fill the disk:
    <root>/alerts/rules/<name>.json   a rule (written by agent commands, under the server lock)
                  silences.json       rule name -> {until, reason, by}
                  state.json          the evaluator's: each alert (rule x model or job) and the group
                  queue/<id>.json     a notification not yet delivered to one channel (retried)
                  history.jsonl       what was sent, and what each receiver answered (last HISTORY_KEEP)
                  problems.json       what the evaluator could not use at its last round (`berth alerts`)
                  state.json.bad      the last state file found broken, set aside (one, overwritten)
                  eval.lock           flock held by whoever evaluates (one evaluation at a time)
Every file is the agent user's alone (0600 in a 0700 folder): rules and queued deliveries hold
webhook URLs, whose path is often the token."""
import fcntl
import json
import os

from .fsutil import read_json, write_json_atomic, _unlink
from .layout import NAME_RE, AgentError
from .alertrules import check_rule_name, validated

STATES = ("pending", "firing", "resolved")
PROBLEMS_MAX = 20

HISTORY_KEEP = 500
QUEUE_MAX = 200  # deliveries waiting; the oldest are dropped beyond this (a receiver down for days)


def folder(root):
    return os.path.join(root.path, "alerts")


def _made(path):
    """`path`'s folder, created 0700 (an older agent's 0755 one is narrowed)."""
    folder_ = os.path.dirname(path)
    os.makedirs(folder_, mode=0o700, exist_ok=True)
    for d in (folder_, os.path.dirname(folder_)):
        if os.path.basename(d) in ("alerts", "rules", "queue") and os.stat(d).st_mode & 0o077:
            os.chmod(d, 0o700)
    return path


def _path(root, *parts):
    return os.path.join(folder(root), *parts)


def rule_file(root, name):
    return _path(root, "rules", check_rule_name(name) + ".json")


def list_rules(root):
    return load_rules(root)[0]


def load_rules(root):
    """(the rules, one line per rule file that cannot be used and why): a hand-edited or truncated
    file is skipped, named, and never stops the other rules."""
    try:
        names = sorted(n[:-5] for n in os.listdir(_path(root, "rules")) if n.endswith(".json"))
    except OSError:
        return [], []
    out, problems = [], []
    for n in names:
        if not NAME_RE.fullmatch(n):
            continue
        rule = read_json(_path(root, "rules", n + ".json"))
        why = rule_problem(rule, n)
        if why:
            problems.append("rule file %s.json is skipped: %s" % (n, why))
        else:
            out.append(rule)
    return out, problems


def rule_problem(rule, name):
    """None for a rule as alert_add writes it, else why it cannot be evaluated."""
    if not isinstance(rule, dict):
        return "it is not a JSON object (unreadable or cut short); remove it with `berth alert remove`"
    if rule.get("name") != name:
        return "it names %r, not %r" % (rule.get("name"), name)
    try:
        again = validated({"name": name, "when": rule.get("expr"), "model": rule.get("model"),
                           "notify": rule.get("notify"), "for": rule.get("for_s", 0),
                           "repeat": rule.get("repeat_s", 4 * 3600)})
    except AgentError as e:
        return str(e)
    if any(rule.get(k) != again[k] for k in ("kind", "op", "threshold")):
        return "its kind or threshold disagree with its expression %s" % again["expr"]
    return None


def has_rules(root):
    """Any rule file, usable or not (a broken one is evaluated as a problem the evaluator reports)."""
    rules, problems = load_rules(root)
    return bool(rules or problems)


def read_rule(root, name):
    rule = read_json(rule_file(root, name))
    if not isinstance(rule, dict):
        names = [r["name"] for r in list_rules(root)]
        raise AgentError("there is no alert %s on this server (%s)" % (
            name, "its alerts: " + ", ".join(names) if names else "it has none yet: berth alert add"), "no_alert")
    return rule


def write_rule(root, rule):
    write_json_atomic(_made(rule_file(root, rule["name"])), rule)


def remove_rule(root, name):
    _unlink(rule_file(root, name))
    silences = read_silences(root)
    if silences.pop(name, None) is not None:
        write_silences(root, silences)


def read_silences(root):
    s = read_json(_path(root, "silences.json"))
    return {k: v for k, v in s.items() if isinstance(v, dict)} if isinstance(s, dict) else {}


def write_silences(root, silences):
    write_json_atomic(_made(_path(root, "silences.json")), silences)


def read_state(root):
    return load_state(root)[0]


def load_state(root):
    """(the evaluator's state, None or why the file could not be used as it was). A broken file
    (cut short by a full disk, edited by hand) gives a fresh state; each unusable alert is dropped."""
    path = _path(root, "state.json")
    try:
        with open(path) as f:
            s = json.load(f)
    except FileNotFoundError:
        s = {}
    except (OSError, ValueError) as e:
        return {"alerts": {}, "group": {}}, "the state file %s cannot be read (%s): starting afresh" % (
            path, getattr(e, "strerror", None) or str(e)[:120])
    if not isinstance(s, dict) or not isinstance(s.get("alerts", {}), dict) or not isinstance(s.get("group", {}),
                                                                                              dict):
        return {"alerts": {}, "group": {}}, "the state file %s is not an evaluator state: starting afresh" % path
    alerts = s.setdefault("alerts", {})
    s.setdefault("group", {})
    bad = [k for k, a in alerts.items() if not (isinstance(a, dict) and isinstance(a.get("rule"), str)
                                                 and a.get("state") in STATES and isinstance(a.get("since"), str))]
    for k in bad:
        del alerts[k]
    return s, ("the state file %s had %d unusable alert(s), dropped" % (path, len(bad)) if bad else None)


def set_aside(root):
    """Keep the broken state file as state.json.bad (only the last one) for whoever wants to look."""
    try:
        os.replace(_path(root, "state.json"), _path(root, "state.json.bad"))
    except OSError:
        pass


def write_state(root, state):
    write_json_atomic(_made(_path(root, "state.json")), state)


def read_problems(root):
    p = read_json(_path(root, "problems.json"))
    return [x for x in p if isinstance(x, str)][:PROBLEMS_MAX] if isinstance(p, list) else []


def write_problems(root, problems):
    """What the evaluator could not use at its last round; written only when that changes."""
    problems = [p[:300] for p in problems][:PROBLEMS_MAX]
    if problems != read_problems(root):
        write_json_atomic(_made(_path(root, "problems.json")), problems)


def firing_status(root):
    """For `status` (one small file read): how many fire and a key of which (a short hash): a desktop asks `alert_state`
    when the key changes, so one alert resolving while another fires (the same count) is seen too.
    An alert of a removed rule is not counted (the evaluator may be gone: nothing else is left)."""
    import hashlib

    firing = [(k, a["rule"]) for k, a in read_state(root)["alerts"].items() if a["state"] == "firing"]
    ids = sorted(k for k, rule in firing if NAME_RE.fullmatch(rule) and os.path.isfile(rule_file(root, rule)))
    key = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] if ids else ""
    return {"alerts_firing": len(ids), "alerts_firing_key": key}


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
    write_json_atomic(_made(os.path.join(queue_dir(root), delivery["id"] + ".json")), delivery)
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
    path = _made(_path(root, "history.jsonl"))
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a") as f:
        os.fchmod(f.fileno(), 0o600)  # one written by an older agent under a 022 umask
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    if os.path.getsize(path) > 4096 * 64:
        with open(path) as f:
            lines = f.readlines()
        if len(lines) > 2 * HISTORY_KEEP:
            tmp = path + ".tmp"
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
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
        _made(self.path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None
