"""`berth server set-port-range S LOW-HIGH`: the range new models' stable ports are chosen from,
kept in <root>/serving.json (endpoint.port_range reads it), under the server lock and journalled
as `port_range.set`. A range that would leave out a port some model already has is refused, naming
them: a stable port moves only when the operator moves it (`berth server set-port`)."""
import os
import re

from . import endpoint, journal
from .fsutil import read_json, write_json_atomic
from .layout import AgentError
from .lock import ServerLock

RANGE_RE = re.compile(r"([0-9]{1,5})-([0-9]{1,5})")


def parse_range(text):
    """(low, high) of "LOW-HIGH", or AgentError (usage) saying what is wrong with it."""
    m = RANGE_RE.fullmatch(text) if isinstance(text, str) else None
    if not m:
        raise AgentError("invalid port range %r: give it as LOW-HIGH, e.g. 18000-18999" % (text,), "usage")
    low, high = int(m.group(1)), int(m.group(2))
    if low > high:
        raise AgentError("invalid port range %s: %d is above %d; give the lower port first" % (text, low, high),
                         "usage")
    if low < 1024 or high > 65535:
        raise AgentError("invalid port range %s: ports must be from 1024 to 65535 (lower ones need root)" % text,
                         "usage")
    return low, high


def set_port_range(ctx, req):
    low, high = parse_range(req.get("range"))
    root = ctx.root.ensure()
    ids = req.get("event_ids") if isinstance(req.get("event_ids"), dict) else {}
    text = "%d-%d" % (low, high)
    with ServerLock(root.lock, {"who": ctx.who(), "what": "port range %s" % text}):
        old = "%d-%d" % endpoint.port_range(root)
        fields = {"old": old, "new": text, "reason": req.get("reason")}
        started = journal.append(root, "port_range.set", "started", ctx.actor, ids.get("started"), **fields)
        try:
            outside = sorted((port, name) for port, name in endpoint.assigned(root).items()
                             if not low <= port <= high)
            if outside:
                raise AgentError("the range %s leaves out ports models already have: %s; widen the range, or move "
                                 "them first with `berth server set-port`" % (
                                     text, ", ".join("%s %d" % (name, port) for port, name in outside)),
                                 "port_outside", outside=[{"model": n, "port": p} for p, n in outside])
            path = endpoint.settings_file(root)
            settings = read_json(path)
            settings = settings if isinstance(settings, dict) else {}
            detail = "port range %s -> %s" % (old, text) if old != text else "port range already %s" % text
            if settings.get("port_range") != text:
                write_json_atomic(path, dict(settings, port_range=text))
                os.chmod(path, 0o644)
        except BaseException as e:
            journal.append(root, "port_range.set", "failed", ctx.actor, ids.get("outcome"), ref=started["id"],
                           detail=str(e) or type(e).__name__, **fields)
            raise
        journal.append(root, "port_range.set", "ok", ctx.actor, ids.get("outcome"), ref=started["id"], detail=detail,
                       **fields)
    return {"range": text, "previous_range": old, "detail": detail}
