"""What an alert rule may say, checked strictly on both sides (the CLI before connecting, the agent
before writing): the expression, the durations and the notify targets. Anything else is refused with
one line listing what is allowed. Stdlib only, Python 3.8+."""
import hashlib
import re

from .layout import NAME_RE, AgentError

# kind -> (operator, what its number is, lowest, highest); None: the rule takes no number
KINDS = {
    "down": None,
    "error_rate": (">", "a fraction of requests", 0.0, 1.0),
    "p95_ms": (">", "milliseconds", 0.0, 3600000.0),
    "memory_pct": (">", "a percentage", 0.0, 100.0),
    "cpu_pct": (">", "a percentage", 0.0, 6400.0),
    "disk_free_pct": ("<", "a percentage", 0.0, 100.0),
    "job_failed": None,
    "job_late": None,
    "auto_rollback": None,
}
MODEL_KINDS = ("down", "error_rate", "p95_ms", "memory_pct", "cpu_pct", "job_failed", "job_late", "auto_rollback")
ALLOWED = ("down, error_rate>R (0..1), p95_ms>MS, memory_pct>P, cpu_pct>P, disk_free_pct<P, job_failed, "
           "job_late, auto_rollback")
EXPR_RE = re.compile(r"\s*([a-z_0-9]+)\s*(?:([<>])\s*([0-9]+(?:\.[0-9]+)?)\s*)?\Z")
DURATION_RE = re.compile(r"([0-9]{1,9})([smhd])")  # 10 KB of digits: refused, not int() too long
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_FOR_S = 7 * 86400
CHANNELS = ("webhook", "email", "alertmanager")
EMAIL_RE = re.compile(r"[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+")
MAX_NOTIFY = 10
DEFAULT_REPEAT_S = 4 * 3600


def parse_expr(text):
    """'p95_ms>200' -> {"kind": "p95_ms", "op": ">", "threshold": 200.0}; refused: one line."""
    m = EXPR_RE.match(text) if isinstance(text, str) else None
    if not m or m.group(1) not in KINDS:
        raise AgentError("--when %r is not a rule; allowed: %s" % (_cut(text), ALLOWED), "bad_rule")
    kind, op, number = m.groups()
    spec = KINDS[kind]
    if spec is None:
        if op:
            raise AgentError("--when %r: %s takes no threshold; allowed: %s" % (_cut(text), kind, ALLOWED),
                             "bad_rule")
        return {"kind": kind, "op": None, "threshold": None}
    want, what, low, high = spec
    if op != want:
        raise AgentError("--when %r: write %s%sNUMBER (%s); allowed: %s" % (_cut(text), kind, want, what, ALLOWED),
                         "bad_rule")
    value = float(number)
    if not low <= value <= high:
        raise AgentError("--when %r: %s must be %g to %g (%s)" % (_cut(text), kind, low, high, what), "bad_rule")
    return {"kind": kind, "op": op, "threshold": value}


def expr_text(rule):
    t = rule.get("threshold")
    return rule["kind"] if t is None else "%s%s%s" % (rule["kind"], rule["op"], ("%g" % t))


def parse_duration(text, what="--for", low=0, high=MAX_FOR_S):
    """'90s', '2m', '4h', '1d' (or '0') -> seconds; refused: one line."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text != text or text in (float("inf"), float("-inf")):  # NaN, which JSON lets a request send
            raise AgentError("%s %r is not a number of seconds" % (what, text), "bad_duration")
        seconds = int(text)
    else:
        m = DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
        if isinstance(text, str) and text.strip() == "0":
            seconds = 0
        elif not m:
            raise AgentError("%s %r is not a duration: write a number and s, m, h or d (30s, 2m, 4h, 1d)"
                             % (what, _cut(text)), "bad_duration")
        else:
            seconds = int(m.group(1)) * UNITS[m.group(2)]
    if not low <= seconds <= high:
        raise AgentError("%s %r must be from %s to %s" % (what, _cut(text), describe_s(low), describe_s(high)),
                         "bad_duration")
    return seconds


def describe_s(seconds):
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % n == 0:
            return "%d%s" % (seconds // n, unit)
    return "%ds" % seconds


def parse_notify(text):
    """'webhook:https://…', 'email:ops@example.com', 'alertmanager:http://…' -> a channel dict."""
    kind, sep, target = text.partition(":") if isinstance(text, str) else ("", "", "")
    said = text if kind not in ("webhook", "alertmanager") else "%s:%s" % (kind, shown_url(target))
    if not sep or kind not in CHANNELS:
        raise AgentError("--notify %r: write webhook:URL, email:ADDRESS or alertmanager:URL" % (_cut(said),),
                         "bad_notify")
    if any(c in target for c in "\r\n\0 ") or not target:
        raise AgentError("--notify %r: the target must be one word with no spaces" % (_cut(said),), "bad_notify")
    if kind == "email":
        if not EMAIL_RE.fullmatch(target):
            raise AgentError("--notify %r: %r is not an e-mail address" % (_cut(text), _cut(target)), "bad_notify")
        return {"kind": "email", "to": target}
    if not re.match(r"https?://[^/?#\s]+", target):
        raise AgentError("--notify %r: the %s URL must start with http:// or https:// and name a host"
                         % (_cut(said), kind), "bad_notify")
    return {"kind": kind, "url": target}


def _cut(text, most=80):
    """What a refusal quotes of the user's text: a 10 KB argument is not echoed back whole."""
    return text if not isinstance(text, str) or len(text) <= most else text[:most] + "…"


def channel_text(channel):
    """The channel as written (its URL whole): what identifies it; kept on the server, never shown."""
    return "%s:%s" % (channel.get("kind"), channel.get("to") or channel.get("url") or "")


def channel_shown(channel):
    """The channel as `alert list`, `alerts`, the journal and the audit show it: a URL's secrets hidden."""
    return "%s:%s" % (channel.get("kind"), channel.get("to") or shown_url(channel.get("url") or ""))


SECRET_RE = re.compile(r"(?=[^/]*[0-9])(?=[^/]*[A-Za-z])[^/]{16,}|[^/]{20,}")


def shown_url(url):
    """A webhook URL with what may be its token hidden: the user:password, every query value, and
    each path part of 20 characters or more, or of 16 mixing letters and digits (Slack's, Discord's
    and Teams' tokens; /hook or /api/v2 stay). A short hash of the whole URL keeps two URLs apart."""
    m = re.match(r"([a-z]+://)([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?\Z", url, re.S)
    if not m:
        return "***"
    scheme, netloc, path, query, fragment = m.groups()
    hidden = "@" in netloc or bool(query) or bool(fragment)
    netloc = "***@" + netloc.rpartition("@")[2] if "@" in netloc else netloc
    parts = path.split("/")
    for i, part in enumerate(parts):
        if SECRET_RE.fullmatch(part):
            parts[i], hidden = "***", True
    query = re.sub(r"=[^&]*", "=***", query) if query else ""
    text = scheme + netloc + "/".join(parts) + query + ("#***" if fragment else "")
    return "%s (%s)" % (text, hashlib.sha256(url.encode()).hexdigest()[:6]) if hidden else text


MAX_REASON = 500


def check_reason(reason):
    """A silence's reason: one line of 1 to MAX_REASON characters (it is shown in lists and the audit)."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise AgentError("a silence needs a reason (--reason TEXT, at most %d characters)" % MAX_REASON, "usage")
    if any(ord(c) < 32 or ord(c) == 127 for c in reason):
        raise AgentError("a silence's --reason must be one line of text (no newline or control character): it is "
                         "shown in `berth alert list` and the audit log", "usage")
    return reason.strip()


def check_rule_name(name):
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise AgentError("invalid alert name %r: lower-case letters, digits and '-', starting with a letter, "
                         "at most 63" % (_cut(name),), "usage")
    return name


def validated(req):
    """The rule an alert_add request asks for (without who and when), or the one reason it cannot be."""
    name = check_rule_name(req.get("name"))
    expr = parse_expr(req.get("when"))
    model = req.get("model")
    if model is not None:
        if not isinstance(model, str) or not NAME_RE.fullmatch(model):
            raise AgentError("invalid model name %r" % (_cut(model),), "usage")
        if expr["kind"] not in MODEL_KINDS:
            raise AgentError("--when %s is about the whole server: leave out --model" % expr["kind"], "bad_rule")
    targets = req.get("notify")
    if not isinstance(targets, list) or not targets:
        raise AgentError("give at least one --notify webhook:URL|email:ADDRESS|alertmanager:URL", "bad_notify")
    if len(targets) > MAX_NOTIFY:
        raise AgentError("at most %d --notify targets per rule" % MAX_NOTIFY, "bad_notify")
    channels = [t if isinstance(t, dict) else parse_notify(t) for t in targets]
    channels = [parse_notify(channel_text(c)) for c in channels]  # a dict is checked as its text form
    return dict(expr, name=name, model=model, expr=expr_text(expr), notify=channels,
                for_s=parse_duration(req.get("for", 0)),
                repeat_s=parse_duration(req.get("repeat", DEFAULT_REPEAT_S), "--repeat", 60, 30 * 86400))
