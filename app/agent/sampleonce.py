"""`sample_once`: the one sample `berth monitor --once` needs, answered inside the connection's agent
session (session.py) instead of a new interpreter started through the login shell on every server.

The streamed `sample` cannot run there: it execs a lean interpreter (that would replace the session),
sets signal handlers and watches stdout (the session's stdout is every request's). This one does none
of that, in the request's own thread: a baseline, `window` seconds (at most ONCE_MAX_WINDOW, so a
session thread is held briefly), one sample with the same fields as `sample`'s first, and every file
and socket it opened closed again. A cancelled request stops at the end of its window (emit raises)."""
import time

from .intervals import MIN_INTERVAL, ONCE_MAX_WINDOW
from .layout import AgentError
from .sampler import FIRST_INTERVAL, Sampler

KEYS = ("root", "actor", "window")  # what Berth sends; anything else is a mistake, not an option


def sample_once(ctx, req):
    """{"window": s (MIN_INTERVAL to ONCE_MAX_WINDOW; default FIRST_INTERVAL)}: emits one "sample"
    event; returns {"samples": 1}."""
    extra = sorted(k for k in req if k not in KEYS)
    if extra:
        raise AgentError("sample_once takes only a 'window', not %s" % ", ".join(repr(k) for k in extra), "usage")
    window = req.get("window", FIRST_INTERVAL)
    if isinstance(window, bool) or not isinstance(window, (int, float)) \
            or not MIN_INTERVAL <= window <= ONCE_MAX_WINDOW:
        raise AgentError("window must be a number of seconds from %g to %g, not %r (a longer one: `sample`)"
                         % (MIN_INTERVAL, ONCE_MAX_WINDOW, window), "usage")
    sampler = Sampler(ctx.root)
    try:
        start = time.monotonic()
        sampler.take(start)  # the baseline: CPU% and rates compare with it
        time.sleep(max(0.0, start + window - time.monotonic()))
        sample = sampler.take(time.monotonic())
    finally:
        sampler.close()
    sample["interval_s"] = float(window)
    ctx.emit("sample", **sample)
    return {"samples": 1}


COMMANDS = {"sample_once": sample_once}
