"""STAND-IN for the real schedule module (another engineer's `app/agent/schedule.py` replaces it):
the same interface, supporting only `every` (10m, 1h, 1d) in UTC, aligned to the clock (10m runs
at :00, :10, ...; 1d at midnight UTC). Cron expressions and other zones are refused clearly."""
import re
from datetime import datetime, timedelta, timezone

from .layout import AgentError

EVERY_RE = re.compile(r"([1-9][0-9]{0,4})([mhd])")
UNIT_S = {"m": 60, "h": 3600, "d": 86400}
DUE_CAP = 1000


class ScheduleError(AgentError):
    def __init__(self, message):
        AgentError.__init__(self, message, "bad_schedule")


class Schedule:
    def __init__(self, every, tz="UTC"):
        self.every, self.tz = every, tz
        m = EVERY_RE.fullmatch(every)
        self.seconds = int(m.group(1)) * UNIT_S[m.group(2)]

    def next_after(self, t):
        """The first slot strictly after `t` (aware), as an aware UTC datetime."""
        ts = t.astimezone(timezone.utc).timestamp()
        slot = (int(ts // self.seconds) + 1) * self.seconds
        return datetime.fromtimestamp(slot, timezone.utc)

    def due_between(self, a, b):
        """Slots in (a, b], at most DUE_CAP of them."""
        out, t = [], self.next_after(a)
        while t <= b and len(out) < DUE_CAP:
            out.append(t)
            t = t + timedelta(seconds=self.seconds)
        return out

    def describe(self):
        return "every %s" % self.every

    def to_json(self):
        return {"every": self.every, "tz": self.tz}

    @classmethod
    def from_json(cls, d):
        return parse_schedule(every=d.get("every"), cron=d.get("cron"), tz=d.get("tz") or "UTC")


def parse_schedule(every=None, cron=None, tz="UTC"):
    if (every is None) == (cron is None):
        raise ScheduleError("give a schedule: either every (10m, 1h, 1d) or cron, not both")
    if cron is not None:
        raise ScheduleError("cron schedules are not supported by this agent yet; use every (10m, 1h, 1d)")
    if tz not in ("UTC", None):
        raise ScheduleError("time zone %r: this agent supports only UTC schedules yet" % (tz,))
    if not isinstance(every, str) or not EVERY_RE.fullmatch(every.strip()):
        raise ScheduleError("every %r: expected a number and a unit m, h or d (10m, 1h, 1d)" % (every,))
    return Schedule(every.strip(), "UTC")
