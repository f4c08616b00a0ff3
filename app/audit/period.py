"""Turning what an operator types as a time bound into the UTC text the log stores.

Accepted: `2026-11-01`, `2026-11-01T10:00`, `2026-11-01 10:00:00+01:00`, or an age: `30m`, `24h`,
`7d`, `2w`. Times without a zone are UTC (the log is UTC; reports say so)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_AGE = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, end: bool = False, now: datetime | None = None) -> datetime:
    """A bare date as an end bound means the end of that day. Raises ValueError with the accepted forms."""
    text = text.strip()
    age = _AGE.fullmatch(text)
    if age:
        return (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[age[2]]: int(age[1])})
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use 2026-11-01, 2026-11-01T10:00, or an age like 7d, 24h, 30m)") \
            from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if end and len(text) == 10:  # a date: through its last millisecond
        value += timedelta(days=1) - timedelta(milliseconds=1)
    return value.astimezone(timezone.utc)


def as_bound(text: str, end: bool = False) -> str:
    return iso(parse_time(text, end))


def iso(value: datetime) -> str:
    """The log's own format: `2026-11-27T05:50:00.123+00:00`."""
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds")
