"""IANA time zones for job schedules, on any Python 3.8+ server.

Python 3.9+ has `zoneinfo`, which is used when it can load the zone. Python 3.8 has not, so this
module also reads the system's TZif files (/usr/share/zoneinfo, RFC 8536) itself: the version 2+
64-bit table when present (else version 1), and the POSIX TZ footer for instants past the table
(e.g. "CET-1CEST,M3.5.0,M10.5.0/3"), so dates in 2040 or 2100 are right even in "slim" files.

A schedule needs only two questions of a zone, both in whole Unix seconds: the UTC offset at an
instant (`offset_at`) and the first instant in (a, b] where the offset changes
(`transition_after`). Changes of abbreviation or of the DST flag alone are not transitions here.
"""
import bisect
import datetime
import os
import re
import struct

TZPATH = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo", "/etc/zoneinfo")
NAME_RE = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_EPOCH = datetime.date(1970, 1, 1).toordinal()
_PROBE = 6 * 3600  # zoneinfo exposes no transitions: look for offset changes this often, then bisect


class ZoneNotFound(LookupError):
    """No such IANA zone on this server (or the file is not TZif data)."""


def load_zone(name):
    """The zone called `name`: zoneinfo when Python has it and finds the zone, else our TZif reader."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or len(name) > 100:
        raise ZoneNotFound(name)
    if name == "UTC":
        return FixedZone(0)
    try:
        import zoneinfo  # Python 3.9+
    except ImportError:
        return read_zone_file(name)
    try:
        return ZoneinfoZone(zoneinfo.ZoneInfo(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return read_zone_file(name)  # raises ZoneNotFound when the system has no such file either


def read_zone_file(name, path=TZPATH):
    for base in path:
        filename = os.path.join(base, name)
        if os.path.isfile(filename):
            with open(filename, "rb") as f:
                data = f.read()
            try:
                return parse_tzif(data)
            except (ValueError, struct.error):
                raise ZoneNotFound(name)
    raise ZoneNotFound(name)


class FixedZone:
    def __init__(self, offset):
        self.offset = offset

    def offset_at(self, ts):
        return self.offset

    def transition_after(self, ts, limit):
        return None


class ZoneinfoZone:
    """A zoneinfo zone seen through offset_at / transition_after: zoneinfo lists no transitions, so
    they are found by probing every 6 hours, then bisecting. Two changes less than 6 hours apart
    would be missed; tzdata has none from 1970 to 2100 (checked over every zone on Debian 12)."""

    def __init__(self, zone):
        self.zone = zone

    def offset_at(self, ts):
        moment = datetime.datetime.fromtimestamp(ts, self.zone)
        return int(moment.utcoffset().total_seconds())

    def transition_after(self, ts, limit):
        before = self.offset_at(ts)
        x = ts
        while x < limit:
            y = min(x + _PROBE, limit)
            if self.offset_at(y) != before:
                while y - x > 1:  # first second with the new offset, in (x, y]
                    mid = (x + y) // 2
                    if self.offset_at(mid) == before:
                        x = mid
                    else:
                        y = mid
                return y
            x = y
        return None


class TzifZone:
    """A zone read from TZif data: its transition table, then its POSIX rule (if any) after it."""

    def __init__(self, times, offsets, first_offset, rule):
        self.times = []    # instants where the offset changes, ascending
        self.offsets = []  # the offset from times[i] on
        previous = first_offset
        for t, off in zip(times, offsets):
            if off != previous:
                self.times.append(t)
                self.offsets.append(off)
                previous = off
        self.first_offset = first_offset
        self.rule = rule
        self.end = times[-1] if times else None  # the rule governs instants from here on

    def offset_at(self, ts):
        if self.rule is not None and (self.end is None or ts >= self.end):
            return self.rule.offset_at(ts)
        i = bisect.bisect_right(self.times, ts)
        return self.offsets[i - 1] if i else self.first_offset

    def transition_after(self, ts, limit):
        i = bisect.bisect_right(self.times, ts)
        if i < len(self.times):
            return self.times[i] if self.times[i] <= limit else None
        if self.rule is None:
            return None
        return self.rule.transition_after(ts if self.end is None else max(ts, self.end), limit, self)


class PosixRule:
    """A POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3" (offsets east of UTC, in seconds)."""

    def __init__(self, std, dst=None, start=None, end=None):
        self.std, self.dst, self.start, self.end = std, dst, start, end

    def _year(self, year):
        """This year's (instant, new offset) pairs, ascending."""
        if self.dst is None:
            return []
        on = _rule_day(self.start[0], year) + self.start[1] - self.std
        off = _rule_day(self.end[0], year) + self.end[1] - self.dst
        return sorted([(on, self.dst), (off, self.std)])

    def _changes(self, ts):
        year = (datetime.date(1970, 1, 1) + datetime.timedelta(days=ts // 86400)).year
        merged = dict(self._year(year - 1) + self._year(year) + self._year(year + 1) + self._year(year + 2))
        return sorted(merged.items())  # a year's end and the next one's start may be one instant

    def offset_at(self, ts):
        offset = self.std
        for at, new in self._changes(ts):
            if at <= ts:
                offset = new
        return offset

    def transition_after(self, ts, limit, zone):
        if self.dst is None:
            return None
        before = zone.offset_at(ts)
        x = ts
        while x < limit:
            for at, new in self._changes(x):
                if at > x + 366 * 86400:
                    break  # near the window's end a change may still be merged away: look again from there
                if at > x and new != before:
                    return at if at <= limit else None
            x += 300 * 86400
        return None


def _rule_day(spec, year):
    """Midnight (as seconds since the epoch, local) of the day a rule names in `year`."""
    kind, a, b, c = spec
    if kind == "J":  # 1..365, February 29 never counted
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        day = datetime.date(year, 1, 1).toordinal() + a - 1 + (1 if leap and a >= 60 else 0)
    elif kind == "N":  # 0..365, February 29 counted
        day = datetime.date(year, 1, 1).toordinal() + a
    else:  # M: month a, week b (5 = last), weekday c (0 = Sunday)
        first = datetime.date(year, a, 1)
        day = first.toordinal() + (c - (first.weekday() + 1)) % 7 + (b - 1) * 7
        next_month = datetime.date(year + a // 12, a % 12 + 1, 1).toordinal()
        while day >= next_month:
            day -= 7
    return (day - _EPOCH) * 86400


_NAME = r"(?:<[A-Za-z0-9+-]+>|[A-Za-z]{3,})"
_OFFSET = r"[+-]?\d{1,3}(?::\d{1,2}){0,2}"
_DATE = r"(?:M\d{1,2}\.\d\.\d|J\d{1,3}|\d{1,3})(?:/" + _OFFSET + ")?"
_POSIX_RE = re.compile("(%s)(%s)(?:(%s)(%s)?(?:,(%s),(%s))?)?" % (_NAME, _OFFSET, _NAME, _OFFSET, _DATE, _DATE))


def parse_posix(text):
    m = _POSIX_RE.fullmatch(text)
    if not m:
        raise ValueError("unreadable TZ rule %r" % (text,))
    std = -_seconds(m.group(2))
    if not m.group(3):
        return PosixRule(std)
    dst = -_seconds(m.group(4)) if m.group(4) else std + 3600
    start, end = m.group(5) or "M3.2.0", m.group(6) or "M11.1.0"  # POSIX's default: US rules
    return PosixRule(std, dst, _date_rule(start), _date_rule(end))


def _date_rule(text):
    day, _, time = text.partition("/")
    seconds = _seconds(time) if time else 7200
    if day.startswith("M"):
        month, week, weekday = (int(p) for p in day[1:].split("."))
        if not (1 <= month <= 12 and 1 <= week <= 5 and 0 <= weekday <= 6):
            raise ValueError("bad TZ rule date %r" % (text,))
        return ("M", month, week, weekday), seconds
    if day.startswith("J"):
        return ("J", int(day[1:]), 0, 0), seconds
    return ("N", int(day), 0, 0), seconds


def _seconds(text):
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")] + [0, 0]
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def parse_tzif(data):
    if data[:4] != b"TZif":
        raise ValueError("not TZif data")
    version = data[4:5]
    times, types, ttinfo, size = _block(data, 0, 4)
    footer = None
    if version >= b"2":
        times, types, ttinfo, size2 = _block(data, size, 8)
        rest = data[size + size2:]
        if rest[:1] == b"\n" and b"\n" in rest[1:]:
            footer = rest[1:rest.index(b"\n", 1)].decode("ascii")
    if not ttinfo:
        raise ValueError("no local time types")
    offsets = [ttinfo[i] for i in types]
    rule = parse_posix(footer) if footer else None
    return TzifZone(times, offsets, ttinfo[0], rule)


def _block(data, at, width):
    """One header + data block: (transition times, their type indexes, type offsets, its size)."""
    if data[at:at + 4] != b"TZif":
        raise ValueError("bad TZif header")
    isut, isstd, leap, timecnt, typecnt, charcnt = struct.unpack(">6l", data[at + 20:at + 44])
    p = at + 44
    times = list(struct.unpack(">%d%s" % (timecnt, "q" if width == 8 else "l"), data[p:p + timecnt * width]))
    p += timecnt * width
    types = list(data[p:p + timecnt])
    p += timecnt
    ttinfo = [struct.unpack(">lBB", data[p + 6 * i:p + 6 * i + 6])[0] for i in range(typecnt)]
    p += typecnt * 6 + charcnt + leap * (width + 4) + isstd + isut
    if any(i >= typecnt for i in types):
        raise ValueError("bad type index")
    return times, types, ttinfo, p - at
