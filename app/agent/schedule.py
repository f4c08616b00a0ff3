"""When a job is due: `--every INTERVAL` or a cron expression, in an IANA time zone (docs/jobs.md).

Both kinds are rules on the job zone's wall clock, walked one stretch of constant UTC offset at
a time (so `0 0 29 2 *` finds the next leap day by skipping months, not by scanning minutes).

- `--every`: whole minutes (the shortest is 1m; seconds are refused), written `10m`, `1h`,
  `1h30m`, `1d`, `2d`. An interval under a day must divide a day evenly and runs at the multiples
  of it from local midnight (every 10m at :00, :10, ...; every 90m at 00:00, 01:30, ...); whole
  days run at 00:00 local (every 2d: on days whose number since 1970-01-01 is even).
- cron: the 5 standard fields, `*`, lists, ranges, steps, names, 7 = Sunday, the `@` shortcuts;
  when day-of-month and day-of-week are both restricted (neither starts with `*`) a day matches if
  EITHER does (Vixie cron, cronie).
- DST follows cronie: a "fixed-time" job (minute and hour fields both without a leading `*`, e.g.
  `30 2 * * *`, `@daily`, `--every 1d`) due in a skipped hour runs once at the first instant after
  the gap (03:00), and in a repeated hour only the first time. A "wildcard" job (`*/15 * * * *`,
  `0 * * * *`, `--every` under a day) runs at each wall-clock slot that exists: it skips the slots
  of a skipped hour and runs the repeated hour's slots again, so `--every 1h` keeps one run per
  real hour across both changes (in a zone whose DST shift is a whole hour). cronie's 3-hour
  limit (a bigger jump counts as a clock reset) does not apply: no zone shifts that much.
"""
import bisect
import datetime
import re

from .layout import AgentError
from .tzfile import ZoneNotFound, load_zone

CAP = 1000                   # due_between returns at most this many slots
HORIZON_DAYS = 366 * 30      # a cron expression with no due time within this never runs
FOLD_MAX = 6 * 3600          # no repeated wall-clock stretch lasts longer
_EPOCH = datetime.date(1970, 1, 1).toordinal()
_UTC = datetime.timezone.utc

FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12), ("day-of-week", 0, 7))
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
NAMES = {3: dict((n, i + 1) for i, n in enumerate(MONTHS)), 4: dict((n, i) for i, n in enumerate(DAYS))}
SHORTCUTS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
             "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_EVERY_RE = re.compile(r"(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?")


class ScheduleError(AgentError):
    """A schedule Berth cannot run; the message names the option or cron field at fault."""

    def __init__(self, message):
        super().__init__(message, "bad_schedule")


def parse_schedule(every=None, cron=None, tz="UTC"):
    if (every is None) == (cron is None):
        raise ScheduleError("give exactly one of --every and --cron")
    zone = _zone(tz)
    if every is not None:
        return Schedule(_Every(every), tz, zone)
    return Schedule(_Cron(cron), tz, zone)


def _zone(tz):
    try:
        return load_zone(tz)
    except ZoneNotFound:
        raise ScheduleError("--tz: unknown time zone %r; use an IANA name such as Europe/Vienna or UTC"
                            % (tz,))


class Schedule:
    def __init__(self, rule, tz, zone):
        self.rule, self.tz, self.zone = rule, tz, zone

    def next_after(self, t):
        """The first due time strictly after the aware datetime `t`, as an aware UTC datetime."""
        return datetime.datetime.fromtimestamp(self._next(_epoch(t)), _UTC)

    def due_between(self, a, b):
        """Due times in (a, b], oldest first, at most CAP of them."""
        out, x, end = [], _epoch(a), _epoch(b)
        while len(out) < CAP:
            x = self._next(x)
            if x > end:
                break
            out.append(datetime.datetime.fromtimestamp(x, _UTC))
        return out

    def describe(self):
        zone = "" if self.tz == "UTC" else " (%s)" % self.tz
        return self.rule.describe() + zone

    def to_json(self):
        return {self.rule.kind: self.rule.text, "tz": self.tz}

    @staticmethod
    def from_json(d):
        if not isinstance(d, dict) or set(d) - {"every", "cron", "tz"}:
            raise ScheduleError("a stored schedule must be {every|cron, tz}: %r" % (d,))
        return parse_schedule(d.get("every"), d.get("cron"), d.get("tz", "UTC"))

    def __eq__(self, other):
        return isinstance(other, Schedule) and self.to_json() == other.to_json()

    def __repr__(self):
        return "<Schedule %s>" % self.describe()

    def _next(self, ts):
        """Walk the stretches of constant offset from the second after `ts` (all whole seconds)."""
        zone, rule = self.zone, self.rule
        at = ts + 1  # not the next UTC minute: an old offset with seconds puts local minutes between
        start = None  # the transition that began the current stretch, when recent enough to matter
        x = at - FOLD_MAX
        while True:
            y = zone.transition_after(x, at)
            if y is None:
                break
            start = x = y
        offset = zone.offset_at(at)
        before = zone.offset_at(start - 1) if start is not None else offset
        for _ in range(4 * 366):  # stretches: about two a year over the horizon
            if start == at and rule.fixed and offset > before and rule.matches_in(start + before, start + offset):
                return start  # cronie: a fixed-time job in the skipped hour runs as the gap ends
            lower = at + offset
            if rule.fixed and before > offset:
                lower = max(lower, start + before)  # the repeated wall-clock stretch ran already
            local = rule.next_local(lower)
            if local is None:
                break
            due = local - offset
            change = zone.transition_after(at, due)
            if change is None:
                return due
            start = at = change
            before, offset = offset, zone.offset_at(change)
        raise ScheduleError("%s never comes due within %d years" % (rule.describe(), HORIZON_DAYS // 366))


def _epoch(t):
    if not isinstance(t, datetime.datetime) or t.utcoffset() is None:
        raise ValueError("schedule times must be aware datetimes, not %r" % (t,))
    return int((t - datetime.datetime(1970, 1, 1, tzinfo=_UTC)) // datetime.timedelta(seconds=1))


class _Rule:
    """Wall-clock slots: the minutes of a day (sorted) on the days `day_ok` accepts."""
    minutes = ()
    fixed = True

    def day_ok(self, day):
        raise NotImplementedError

    def next_local(self, local):
        """The first slot at or after `local` (wall-clock seconds since 1970), or None."""
        days, second = divmod(local, 86400)
        minute = -(-second // 60)
        ordinal = _EPOCH + days
        last = min(ordinal + HORIZON_DAYS, datetime.date.max.toordinal())
        i = bisect.bisect_left(self.minutes, minute)
        while ordinal < last:
            day = datetime.date.fromordinal(ordinal)
            if day.month not in self.months:
                ordinal = _next_month(day)
                i = 0
                continue
            if i < len(self.minutes) and self.day_ok(day):
                return (ordinal - _EPOCH) * 86400 + self.minutes[i] * 60
            ordinal += 1
            i = 0
        return None

    def matches_in(self, a, b):
        """Is there a slot in the wall-clock span [a, b)?"""
        local = self.next_local(a)
        return local is not None and local < b


def _next_month(day):
    return datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1).toordinal()


class _Every(_Rule):
    kind = "every"
    months = frozenset(range(1, 13))

    def __init__(self, text):
        if not isinstance(text, str):
            raise ScheduleError("--every: give a text such as 10m, 1h or 1d, not %r" % (text,))
        m = _EVERY_RE.fullmatch(text.strip().lower())
        if not text.strip() or not m:
            hint = " (seconds are not supported: the shortest interval is 1m)" if text.strip().endswith("s") else ""
            raise ScheduleError("--every: %r is not an interval; write whole minutes, hours or days such as "
                                "10m, 1h, 1h30m or 1d%s" % (text, hint))
        d, h, mi = (int(g or 0) for g in m.groups())
        total = d * 1440 + h * 60 + mi
        if total == 0:
            raise ScheduleError("--every: %r is zero; the shortest interval is 1m" % (text,))
        if total < 1440 and 1440 % total:
            raise ScheduleError("--every: %r does not divide a day evenly, so the runs could not stay on the "
                                "clock; use one that does (1m, 5m, 10m, 15m, 20m, 30m, 1h, 90m, 2h, 3h, 4h, 6h, "
                                "8h, 12h) or --cron" % (text,))
        if total >= 1440 and total % 1440:
            raise ScheduleError("--every: %r is longer than a day but not whole days; use 1d, 2d, ... "
                                "or --cron" % (text,))
        if total > 366 * 1440:
            raise ScheduleError("--every: %r is longer than a year; use --cron" % (text,))
        self.step, self.days = (total, 1) if total < 1440 else (1440, total // 1440)
        self.minutes = tuple(range(0, 1440, self.step))
        self.fixed = total >= 1440
        self.text = _interval_text(total)

    def day_ok(self, day):
        return (day.toordinal() - _EPOCH) % self.days == 0

    def describe(self):
        return "every " + self.text


def _interval_text(total):
    d, rest = divmod(total, 1440)
    h, m = divmod(rest, 60)
    return "".join("%d%s" % (n, u) for n, u in ((d, "d"), (h, "h"), (m, "m")) if n)


class _Cron(_Rule):
    kind = "cron"

    def __init__(self, text):
        if not isinstance(text, str):
            raise ScheduleError("--cron: give an expression such as '30 2 * * *', not %r" % (text,))
        self.text = " ".join(text.split())
        expr = self.text
        if expr.startswith("@"):
            if expr.lower() not in SHORTCUTS:
                raise ScheduleError("--cron: %r is not a schedule; use @hourly, @daily, @weekly, @monthly or "
                                    "@yearly, or 5 fields" % (expr,))
            expr = SHORTCUTS[expr.lower()]
        parts = expr.split(" ")
        if len(parts) != 5:
            raise ScheduleError("--cron: %r has %d fields; a cron expression has 5 (minute hour day-of-month "
                                "month day-of-week), with no seconds, year or command" % (self.text, len(parts)))
        sets = [_field(i, p) for i, p in enumerate(parts)]
        minutes, hours, self.doms, self.months, dows = sets
        self.dows = frozenset(d % 7 for d in dows)
        self.minutes = tuple(sorted(h * 60 + m for h in hours for m in minutes))
        self.fixed = not parts[0].startswith("*") and not parts[1].startswith("*")
        self.dom_star, self.dow_star = parts[2].startswith("*"), parts[4].startswith("*")
        if not self.dom_star and self.dow_star and not any(
                d <= MONTH_DAYS[m - 1] for m in self.months for d in self.doms):
            raise ScheduleError("cron field 3 (day-of-month): no month in field 4 has day %s, so %r never "
                                "runs" % (",".join(str(d) for d in sorted(self.doms)), self.text))

    def day_ok(self, day):
        dom = day.day in self.doms
        dow = (day.weekday() + 1) % 7 in self.dows
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def describe(self):
        return "cron '%s'" % self.text


def _field(index, text):
    name, low, high = FIELDS[index]
    where = "cron field %d (%s)" % (index + 1, name)
    values = set()
    for item in text.split(","):
        values.update(_item(item, index, low, high, where))
    return frozenset(values)


def _item(item, index, low, high, where):
    if not item:
        raise ScheduleError("%s: an empty list item; write values separated by single commas" % where)
    span, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or not 1 <= int(step_text) <= high:
            raise ScheduleError("%s: %r: the step must be a number from 1 to %d" % (where, item, high))
        step = int(step_text)
    if span == "*":
        first, last = low, (6 if index == 4 else high)
    elif "-" in span:
        a, _, b = span.partition("-")
        first, last = _value(a, index, low, high, where), _value(b, index, low, high, where)
        if first > last:
            raise ScheduleError("%s: %r: the range runs backwards; write the smaller value first" % (where, item))
    else:
        first = last = _value(span, index, low, high, where)
        if slash:
            raise ScheduleError("%s: %r: a step needs a range or *, e.g. %s-%d/%d" % (where, item, span, high, step))
    return range(first, last + 1, step)


def _value(text, index, low, high, where):
    word = text.lower()
    if word in NAMES.get(index, {}):
        return NAMES[index][word]
    if not text.isdigit():
        known = " (or a name such as %s)" % ("jan" if index == 3 else "mon") if index in NAMES else ""
        raise ScheduleError("%s: %r is not a number%s" % (where, text, known))
    value = int(text)
    if not low <= value <= high:
        raise ScheduleError("%s: %d is out of range %d-%d" % (where, value, low, high))
    return value
