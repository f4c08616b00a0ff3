"""`sample_stream`: the console's live samples as a request of the connection's agent session
(session.py), not as `agent.py sample` on an exec channel of its own. That one costs a second login
shell, a second interpreter and a second check of the agent's files per server whenever a console
starts (issue 23: with 100 servers on one machine, a quarter of the start-up's CPU), and ~12 MB for
as long as the console watches.

The same samples as `sample` (sampler.run), in the request's own thread: no exec, no signal handlers,
no watching of stdout (the session's stdout is every request's). Between samples it waits on the
request's own event, so a cancel (Berth closed the stream, the session ends) ends it at once rather
than at its next sample, up to a minute later."""
import threading
import time

from .layout import AgentError
from .protocol import Cancelled
from .sampler import count_field, run, seconds_field

KEYS = ("root", "actor", "interval", "count")  # what Berth sends; anything else is a mistake, not an option
MAX_STREAMS = 8  # per session (one connection): a console runs one; a loop opening more is refused
_slots = threading.BoundedSemaphore(MAX_STREAMS)


class _Paused:
    """The sampler's wait (sampler.run's `watch`), cut short by a cancel."""

    def __init__(self, pause):
        self.pause = pause

    def sleep_until(self, due):
        left = due - time.monotonic()
        why = self.pause(left) if left > 0 else ""
        if why:
            raise Cancelled(why)

    def quiet(self):
        pass  # the session's stdout is not ours to silence


def sample_stream(ctx, req):
    """{"interval": s, "count": n (0 = until cancelled)}: "sample" events; returns {"samples": n}."""
    pause = getattr(ctx.emit, "pause", None)
    if pause is None:
        raise AgentError("sample_stream runs in an agent session; a one-shot agent streams with `sample`", "usage")
    extra = sorted(k for k in req if k not in KEYS)
    if extra:
        raise AgentError("sample_stream takes an 'interval' and a 'count', not %s"
                         % ", ".join(repr(k) for k in extra), "usage")
    interval, count = seconds_field(req, "interval", 1.0), count_field(req)
    if not _slots.acquire(blocking=False):
        raise AgentError("this session already runs %d sample streams; close one first" % MAX_STREAMS, "busy")
    try:
        return run(ctx.root, interval, count, ctx.emit, None, watch=_Paused(pause))
    finally:
        _slots.release()


COMMANDS = {"sample_stream": sample_stream}
