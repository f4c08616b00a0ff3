"""Job schedules (app/agent/schedule.py, app/agent/tzfile.py).

Oracles, not our own reading: croniter for cron next-times in UTC, zoneinfo (and glibc's answers)
for the TZif reader, a transcription of cronie's main loop for DST changes. DST is also asserted
explicitly, following cronie (src/cron.c: a fixed-time job skipped by a spring
gap runs once as the gap ends; in a repeated hour only wildcard jobs run again). Where croniter
differs from cronie it is said below and cronie's answer is asserted.
"""
import glob
import json
import os
import random
import struct
import subprocess
import sys
import time
import zoneinfo
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from croniter import croniter

from app.agent import tzfile
from app.agent.layout import AgentError
from app.agent.schedule import CAP, ScheduleError, parse_schedule

UTC = timezone.utc
ROOT = Path(__file__).resolve().parent.parent
ZONES = ["Europe/Vienna", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(tz, *args, fold=0):
    return datetime(*args, tzinfo=zoneinfo.ZoneInfo(tz), fold=fold).astimezone(UTC)


def runs(schedule, a, b):
    return schedule.due_between(a, b)


# --- cron in UTC against croniter ----------------------------------------------------------------

def _random_field(r, low, high, names=None):
    def one():
        kind = r.choice(["value", "value", "range", "range-step", "name"] if names else
                        ["value", "value", "range", "range-step"])
        a = r.randint(low, high - 1)
        b = r.randint(a + 1, high)  # croniter 7.0 reads a one-value range such as 23-23 as * (see below)
        if kind == "value":
            return str(a)
        if kind == "name":
            return names[a - low] if a - low < len(names) else str(a)
        if kind == "range":
            return "%d-%d" % (a, b)
        return "%d-%d/%d" % (a, b, r.randint(1, max(1, (high - low) // 2)))
    kind = r.random()
    if kind < 0.3:
        return "*"
    if kind < 0.45:
        return "*/%d" % r.randint(1, max(1, (high - low) // 2))
    return ",".join(one() for _ in range(r.randint(1, 3)))


def _random_expression(r):
    months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    return " ".join([_random_field(r, 0, 59), _random_field(r, 0, 23), _random_field(r, 1, 28),
                     _random_field(r, 1, 12, months), _random_field(r, 0, 7, days)])


def _croniter_agrees_on_days(expr):
    """croniter ORs the day fields whenever neither is exactly '*'; cronie (and we) AND them when
    either merely starts with '*' (e.g. '*/2'): the two differ only then (asserted separately)."""
    dom, dow = expr.split()[2], expr.split()[4]
    return not any(f.startswith("*") and f != "*" and g != "*" for f, g in ((dom, dow), (dow, dom)))


def test_cron_next_times_match_croniter_for_random_expressions_in_utc():
    r = random.Random(14)
    compared = 0
    while compared < 400:
        expr = _random_expression(r)
        if not _croniter_agrees_on_days(expr):
            continue
        schedule = parse_schedule(cron=expr)
        for _ in range(3):
            start = utc(2000, 1, 1) + timedelta(seconds=r.randrange(40 * 365 * 86400))
            it = croniter(expr, start)
            t = start
            for _ in range(4):
                t = schedule.next_after(t)
                assert t == it.get_next(datetime), (expr, start)
        compared += 1


@pytest.mark.parametrize("expr", ["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually",
                                  "0 0 * * 7", "0 0 * * 5-7", "0 12 13 * fri", "15 */6 1,15 * mon-wed",
                                  "0 0 29 2 *", "59 23 31 12 *", "*/7 1-5/2 * JAN-MAR,oct SUN"])
def test_cron_shortcuts_names_and_sunday_match_croniter(expr):
    schedule = parse_schedule(cron=expr)
    it = croniter(expr, utc(2023, 5, 17, 8, 13))
    t = utc(2023, 5, 17, 8, 13)
    for _ in range(12):
        t = schedule.next_after(t)
        assert t == it.get_next(datetime)


def test_a_one_value_range_is_that_value():
    """croniter 7.0 expands '23-23' to every hour; cronie and we read it as 23."""
    assert runs(parse_schedule(cron="0 8,23-23 * * *"), utc(2026, 1, 1), utc(2026, 1, 2)) == [
        utc(2026, 1, 1, 8), utc(2026, 1, 1, 23)]


def test_either_day_field_matches_when_both_are_restricted():
    fridays_and_13ths = runs(parse_schedule(cron="0 0 13 * fri"), utc(2026, 2, 1), utc(2026, 3, 31))
    assert [t.day for t in fridays_and_13ths] == [6, 13, 20, 27, 6, 13, 20, 27]  # 13 Feb is a Friday


def test_a_day_field_starting_with_a_star_makes_both_day_fields_apply_as_in_cronie():
    """cronie sets DOM_STAR from the field's first character, so '*/2' in day-of-month with a
    day-of-week means odd days that are Mondays. croniter ORs them (odd days or Mondays)."""
    got = runs(parse_schedule(cron="0 0 */2 * mon"), utc(2026, 1, 1), utc(2026, 4, 1))
    assert [t.date().isoformat() for t in got] == ["2026-01-05", "2026-01-19", "2026-02-09", "2026-02-23",
                                                    "2026-03-09", "2026-03-23"]


def test_strictly_after_and_seconds_are_ignored():
    s = parse_schedule(cron="*/10 * * * *")
    assert s.next_after(utc(2026, 1, 1, 0, 10)) == utc(2026, 1, 1, 0, 20)
    assert s.next_after(utc(2026, 1, 1, 0, 9, 59, 999999)) == utc(2026, 1, 1, 0, 10)
    assert s.next_after(local("Asia/Kolkata", 2026, 1, 1, 5, 40)) == utc(2026, 1, 1, 0, 20)
    assert s.next_after(utc(2026, 1, 1)).tzinfo == UTC
    lmt = parse_schedule(cron="0 12 * * *", tz="Europe/Vienna")  # 1890: local mean time, +01:05:21
    noon = local("Europe/Vienna", 1890, 1, 1, 12)
    assert noon.second == 39 and lmt.next_after(noon - timedelta(seconds=10)) == noon
    assert lmt.next_after(noon) == local("Europe/Vienna", 1890, 1, 2, 12)


# --- DST -----------------------------------------------------------------------------------------

def test_a_fixed_job_in_the_spring_gap_runs_once_as_the_gap_ends():
    s = parse_schedule(cron="30 2 * * *", tz="Europe/Vienna")
    assert runs(s, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12)) == [
        local("Europe/Vienna", 2026, 3, 28, 2, 30), local("Europe/Vienna", 2026, 3, 29, 3, 0),
        local("Europe/Vienna", 2026, 3, 30, 2, 30)]
    assert s.next_after(utc(2026, 3, 29, 0, 59, 30)) == utc(2026, 3, 29, 1)  # asked just before the gap ends
    assert s.next_after(utc(2026, 3, 29, 1)) == utc(2026, 3, 30, 0, 30)
    two_slots = parse_schedule(cron="0,30 2 * * *", tz="Europe/Vienna")  # both in the gap: one run
    assert runs(two_slots, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == [utc(2026, 3, 29, 1)]
    ny = parse_schedule(cron="30 2 * * *", tz="America/New_York")
    assert ny.next_after(utc(2026, 3, 8)) == local("America/New_York", 2026, 3, 8, 3, 0) == utc(2026, 3, 8, 7)


def test_a_fixed_job_in_the_repeated_hour_runs_only_the_first_time():
    """croniter returns 02:30 twice here (+02:00 and +01:00); cronie runs it once."""
    s = parse_schedule(cron="30 2 * * *", tz="Europe/Vienna")
    assert runs(s, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == [
        local("Europe/Vienna", 2026, 10, 25, 2, 30, fold=0), local("Europe/Vienna", 2026, 10, 26, 2, 30)]
    # asked from inside the repeated hour, after the first 02:30: the next run is the next day's
    assert s.next_after(local("Europe/Vienna", 2026, 10, 25, 2, 10, fold=1)) == \
        local("Europe/Vienna", 2026, 10, 26, 2, 30)
    ny = parse_schedule(cron="30 1 * * *", tz="America/New_York")
    assert runs(ny, utc(2026, 11, 1), utc(2026, 11, 2)) == [utc(2026, 11, 1, 5, 30)]  # 01:30 EDT


def test_lord_howe_half_hour_dst():
    gap = parse_schedule(cron="15 2 * * *", tz="Australia/Lord_Howe")  # 02:00 -> 02:30 on 4 Oct 2026
    assert runs(gap, utc(2026, 10, 3), utc(2026, 10, 4, 12)) == [local("Australia/Lord_Howe", 2026, 10, 4, 2, 30)]
    assert local("Australia/Lord_Howe", 2026, 10, 4, 2, 30) == utc(2026, 10, 3, 15, 30)
    fold = parse_schedule(cron="45 1 * * *", tz="Australia/Lord_Howe")  # 02:00 -> 01:30 on 5 Apr 2026
    assert runs(fold, utc(2026, 4, 4), utc(2026, 4, 5, 12)) == [utc(2026, 4, 4, 14, 45)]  # 01:45 +11:00
    wild = parse_schedule(cron="*/15 1 * * *", tz="Australia/Lord_Howe")  # 01:30-02:00 happens twice
    assert [t.strftime("%H:%M") for t in runs(wild, utc(2026, 4, 4), utc(2026, 4, 5, 12))] == [
        "14:00", "14:15", "14:30", "14:45", "15:00", "15:15"]  # 01:00-01:45 +11:00, then 01:30, 01:45 again


def _cronie_runs(expr, tz, start, end):
    """Instants where cronie would run `expr` from `start` to `end`: its main loop (cron.c,
    minute by minute on a virtual clock of local minutes: timeDiff 1 runs the minute; a jump
    forward of 6-180 runs wildcard jobs for the new minute and fixed-time jobs for each skipped
    one; a jump back of up to 180 runs only wildcard jobs until the clock has caught up). Which
    wall-clock minutes match comes from croniter (no time zone: plain wall-clock minutes)."""
    zone = zoneinfo.ZoneInfo(tz)
    wildcard = expr.split()[0].startswith("*") or expr.split()[1].startswith("*")

    def local_minute(ts):
        return (ts + int(datetime.fromtimestamp(ts, zone).utcoffset().total_seconds())) // 60

    first, last = local_minute(start) - 240, local_minute(end) + 240
    it = croniter(expr, datetime(1970, 1, 1) + timedelta(minutes=first - 1))
    matching = set()
    while True:
        m = int((it.get_next(datetime) - datetime(1970, 1, 1)).total_seconds()) // 60
        if m > last:
            break
        matching.add(m)
    fired, virtual = [], local_minute(start)
    for ts in range(start + 60, end + 1, 60):
        running = local_minute(ts)
        diff = running - virtual
        if diff == 1:
            virtual, fire = running, running in matching
        elif 5 < diff <= 180:
            fire = (wildcard and running in matching) or (
                not wildcard and any(v in matching for v in range(virtual + 1, running + 1)))
            virtual = running
        elif -180 < diff <= 0:
            fire = wildcard and running in matching
        else:
            raise AssertionError("no such jump in these tests: %d minutes" % diff)
        if fire:
            fired.append(datetime.fromtimestamp(ts, UTC))
    return fired


TRANSITIONS = [("Europe/Vienna", utc(2026, 3, 29, 1)), ("Europe/Vienna", utc(2026, 10, 25, 1)),
               ("America/New_York", utc(2026, 3, 8, 7)), ("America/New_York", utc(2026, 11, 1, 6)),
               ("Australia/Lord_Howe", utc(2026, 4, 4, 15)), ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30))]


def test_dst_changes_match_a_transcription_of_cronies_main_loop():
    r = random.Random(25)
    for _ in range(60):
        hours = r.choice(["*", "1-3", "0-4/2", "2", "1,2,3", "*/2", "2-3", "0-23/3"])
        minutes = r.choice(["*", "*/15", "0", "30", "15,45", "0-59/7", "5-50/20", "59", "29,31"])
        expr = "%s %s * * *" % (minutes, hours)
        for tz, change in r.sample(TRANSITIONS, 2):
            a, b = change - timedelta(hours=5), change + timedelta(hours=5)
            assert runs(parse_schedule(cron=expr, tz=tz), a, b) == _cronie_runs(expr, tz, int(a.timestamp()),
                                                                                  int(b.timestamp())), (expr, tz)


def test_wildcard_jobs_skip_the_gap_and_repeat_the_repeated_hour_so_they_keep_real_time():
    for expr in ("*/15 * * * *", "30 * * * *"):
        s = parse_schedule(cron=expr, tz="Europe/Vienna")
        for a in (utc(2026, 3, 28, 20), utc(2026, 10, 24, 20)):
            got = runs(s, a, a + timedelta(hours=10))
            step = timedelta(minutes=15) if "/" in expr else timedelta(hours=1)
            assert len(got) == 10 * 3600 // step.seconds
            assert all(b - a == step for a, b in zip(got, got[1:])), expr


def test_every_1h_is_every_real_hour_across_both_changes():
    s = parse_schedule(every="1h", tz="Europe/Vienna")
    for a in (utc(2026, 3, 28), utc(2026, 10, 24)):
        got = runs(s, a, a + timedelta(days=3))
        assert len(got) == 72 and all(b - a == timedelta(hours=1) for a, b in zip(got, got[1:]))
        assert all(t.minute == 0 for t in got)


def test_every_1d_runs_at_local_midnight_and_after_a_midnight_gap():
    s = parse_schedule(every="1d", tz="Europe/Vienna")
    got = runs(s, utc(2026, 3, 27), utc(2026, 3, 31))
    assert got == [local("Europe/Vienna", 2026, 3, d) for d in (28, 29, 30, 31)]
    havana = parse_schedule(every="1d", tz="America/Havana")  # 00:00 -> 01:00 on 8 March 2026
    assert runs(havana, utc(2026, 3, 7, 12), utc(2026, 3, 9, 12)) == [
        local("America/Havana", 2026, 3, 8, 1, 0), local("America/Havana", 2026, 3, 9)]


# --- --every ------------------------------------------------------------------------------------

def test_every_is_aligned_to_the_clock_of_its_zone():
    assert [t.strftime("%H:%M") for t in runs(parse_schedule(every="10m"), utc(2026, 1, 1, 0, 3),
                                              utc(2026, 1, 1, 0, 45))] == ["00:10", "00:20", "00:30", "00:40"]
    kolkata = parse_schedule(every="1h", tz="Asia/Kolkata")  # +05:30: local :00 is :30 UTC
    assert kolkata.next_after(utc(2026, 1, 1, 0, 0)) == utc(2026, 1, 1, 0, 30)
    ninety = parse_schedule(every="1h30m")
    assert [t.strftime("%H:%M") for t in runs(ninety, utc(2026, 1, 1, 20), utc(2026, 1, 2, 3))] == [
        "21:00", "22:30", "00:00", "01:30", "03:00"]
    two_days = runs(parse_schedule(every="2d"), utc(2026, 1, 1), utc(2026, 1, 8))
    assert [t.day for t in two_days] == [3, 5, 7]  # days whose number since 1970-01-01 is even (1 Jan 2026: 20454)
    assert parse_schedule(every="90m").describe() == "every 1h30m"
    assert parse_schedule(every="60m").describe() == "every 1h"


# --- due_between, describe, JSON ----------------------------------------------------------------

def test_due_between_is_half_open_and_capped():
    s = parse_schedule(every="10m")
    assert runs(s, utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 30)) == [
        utc(2026, 1, 1, 0, 10), utc(2026, 1, 1, 0, 20), utc(2026, 1, 1, 0, 30)]
    assert runs(s, utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 0, 30)) == []
    assert runs(s, utc(2026, 1, 2), utc(2026, 1, 1)) == []
    every_minute = runs(parse_schedule(cron="* * * * *"), utc(2026, 1, 1), utc(2027, 1, 1))
    assert len(every_minute) == CAP == 1000 and every_minute[-1] == utc(2026, 1, 1) + timedelta(minutes=1000)


@pytest.mark.parametrize("kwargs, text", [
    (dict(every="10m"), "every 10m"),
    (dict(every="1d", tz="Asia/Kolkata"), "every 1d (Asia/Kolkata)"),
    (dict(cron="30 2 * * *", tz="Europe/Vienna"), "cron '30 2 * * *' (Europe/Vienna)"),
    (dict(cron=" @daily "), "cron '@daily'"),
])
def test_describe_and_json_round_trip(kwargs, text):
    s = parse_schedule(**kwargs)
    assert s.describe() == text
    stored = json.loads(json.dumps(s.to_json()))
    again = type(s).from_json(stored)
    assert again == s and again.describe() == text
    assert again.next_after(utc(2026, 6, 1)) == s.next_after(utc(2026, 6, 1))


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(cron="0 25 * * *"), "cron field 2 (hour): 25 is out of range 0-23"),
    (dict(cron="60 * * * *"), "cron field 1 (minute): 60 is out of range 0-59"),
    (dict(cron="0 0 0 * *"), "cron field 3 (day-of-month): 0 is out of range 1-31"),
    (dict(cron="0 0 * 13 *"), "cron field 4 (month): 13 is out of range 1-12"),
    (dict(cron="0 0 * * 8"), "cron field 5 (day-of-week): 8 is out of range 0-7"),
    (dict(cron="0 0 * foo *"), "cron field 4 (month): 'foo' is not a number (or a name such as jan)"),
    (dict(cron="0 0 * * mon#2"), "cron field 5 (day-of-week): 'mon#2' is not a number"),
    (dict(cron="L * * * *"), "cron field 1 (minute): 'L' is not a number"),
    (dict(cron="0 0 ? * *"), "cron field 3 (day-of-month): '?' is not a number"),
    (dict(cron="*/0 * * * *"), "cron field 1 (minute): '*/0': the step must be a number from 1 to 59"),
    (dict(cron="0 */x * * *"), "cron field 2 (hour): '*/x': the step must be"),
    (dict(cron="5-1 * * * *"), "cron field 1 (minute): '5-1': the range runs backwards"),
    (dict(cron="5/15 * * * *"), "cron field 1 (minute): '5/15': a step needs a range or *, e.g. 5-59/15"),
    (dict(cron="1-2-3 * * * *"), "cron field 1 (minute): '2-3' is not a number"),
    (dict(cron="1,,2 * * * *"), "cron field 1 (minute): an empty list item"),
    (dict(cron="-1 * * * *"), "cron field 1 (minute): '' is not a number"),
    (dict(cron="* * * *"), "has 4 fields; a cron expression has 5"),
    (dict(cron="0 * * * * *"), "has 6 fields"),
    (dict(cron="0 0 * * * /bin/true"), "has 6 fields"),
    (dict(cron=""), "has 1 fields"),
    (dict(cron="@reboot"), "--cron: '@reboot' is not a schedule"),
    (dict(cron="@every 5m"), "--cron: '@every 5m' is not a schedule"),
    (dict(cron="0 0 30 2 *"), "cron field 3 (day-of-month): no month in field 4 has day 30, so '0 0 30 2 *' never runs"),
    (dict(cron="0 0 31 apr,jun,sep,nov *"), "no month in field 4 has day 31"),
    (dict(cron=5), "--cron: give an expression"),
    (dict(every="10x"), "--every: '10x' is not an interval"),
    (dict(every="30s"), "seconds are not supported: the shortest interval is 1m"),
    (dict(every="1.5h"), "--every: '1.5h' is not an interval"),
    (dict(every="-5m"), "--every: '-5m' is not an interval"),
    (dict(every=""), "--every: '' is not an interval"),
    (dict(every="m"), "--every: 'm' is not an interval"),
    (dict(every="0m"), "--every: '0m' is zero"),
    (dict(every="7m"), "--every: '7m' does not divide a day evenly"),
    (dict(every="36h"), "--every: '36h' is longer than a day but not whole days"),
    (dict(every="400d"), "--every: '400d' is longer than a year"),
    (dict(every=10), "--every: give a text such as 10m"),
    (dict(), "give exactly one of --every and --cron"),
    (dict(every="1h", cron="0 * * * *"), "give exactly one of --every and --cron"),
    (dict(every="1h", tz="Mars/Base"), "--tz: unknown time zone 'Mars/Base'; use an IANA name"),
    (dict(every="1h", tz="../../etc/passwd"), "--tz: unknown time zone '../../etc/passwd'"),
    (dict(every="1h", tz="/etc/localtime"), "--tz: unknown time zone '/etc/localtime'"),
    (dict(every="1h", tz=""), "--tz: unknown time zone ''"),
    (dict(every="1h", tz="europe/vienna"), "--tz: unknown time zone 'europe/vienna'"),
    (dict(every="1h", tz=None), "--tz: unknown time zone None"),
])
def test_bad_schedules_say_where(kwargs, message):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(**kwargs)
    assert message in str(caught.value)
    assert caught.value.code == "bad_schedule" and isinstance(caught.value, AgentError)


@pytest.mark.parametrize("stored", [{"every": "1h", "when": "now"}, "every 1h", {}, {"cron": "0 25 * * *"}])
def test_a_bad_stored_schedule_is_refused(stored):
    with pytest.raises(ScheduleError):
        parse_schedule(every="1h").from_json(stored)


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        parse_schedule(every="1h").next_after(datetime(2026, 1, 1))


# --- speed --------------------------------------------------------------------------------------

def test_next_after_jumps_instead_of_scanning_minutes():
    s = parse_schedule(cron="0 0 29 2 *", tz="Europe/Vienna")
    started = time.perf_counter()
    assert s.next_after(utc(2097, 3, 1)) == local("Europe/Vienna", 2104, 2, 29)  # 2100 is no leap year
    assert time.perf_counter() - started < 1.0  # about 0.03 s here; a minute-by-minute scan takes minutes


# --- the TZif reader against zoneinfo -----------------------------------------------------------

def _instants(r, n):
    return [r.randrange(-2 ** 31, 4102444800 + 60 * 365 * 86400) for _ in range(n)]


@pytest.mark.parametrize("name", ZONES + ["America/Sao_Paulo", "Africa/Casablanca", "Antarctica/Troll",
                                          "Pacific/Apia", "America/Havana", "Pacific/Chatham"])
def test_tzif_reader_agrees_with_zoneinfo(name):
    ours, oracle = tzfile.read_zone_file(name), tzfile.ZoneinfoZone(zoneinfo.ZoneInfo(name))
    r = random.Random(name)
    for ts in _instants(r, 5000):
        assert ours.offset_at(ts) == oracle.offset_at(ts), (name, ts)
    ts, limit = 0, 4102444800  # every transition 1970-2100, and the offsets on both sides of it
    while True:
        change = ours.transition_after(ts, limit)
        assert change == oracle.transition_after(ts, limit), (name, ts)
        if change is None:
            break
        for probe in (change - 1, change, change + 1):
            assert ours.offset_at(probe) == oracle.offset_at(probe)
        ts = change


def _tzif(footer, times=(), types=(), offsets=(0,)):
    """TZif version 2 data with the given transitions, local time types and POSIX footer."""
    def block(width):
        counts = struct.pack(">6l", 0, 0, 0, len(times), len(offsets), 4)
        body = struct.pack(">%d%s" % (len(times), "q" if width == 8 else "l"), *times) + bytes(types)
        body += b"".join(struct.pack(">lBB", off, 0, 0) for off in offsets) + b"XXX\0"
        return b"TZif2" + bytes(15) + counts + body
    return block(4) + block(8) + b"\n" + footer.encode() + b"\n"


@pytest.mark.parametrize("footer", [
    "CET-1CEST,M3.5.0,M10.5.0/3", "EST5EDT,M3.2.0,M11.1.0", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
    "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1", "XXX3YYY,J60/2,J300/25", "XXX-2YYY-3,0/0,J365/25",
    "IST-5:30", "UTC0", "<-0930>9:30", "AAA-11:45BBB,M9.5.0/2:45,M4.1.0/3:45",
    "<+13>-13<+14>,M9.5.0/3,M4.1.0/4", "WGT3WGST,M3.5.0/-2,M10.5.0/-1",
])
def test_posix_footer_alone_agrees_with_zoneinfo(footer):
    data = _tzif(footer)
    ours = tzfile.parse_tzif(data)
    import io
    oracle = tzfile.ZoneinfoZone(zoneinfo.ZoneInfo.from_file(io.BytesIO(data), key="test"))
    r = random.Random(footer)
    for ts in _instants(r, 3000):
        assert ours.offset_at(ts) == oracle.offset_at(ts), (footer, ts)
    ts = 1577836800
    for _ in range(40):  # 2020 on: the transitions the rule makes
        change = ours.transition_after(ts, ts + 2 * 366 * 86400)
        assert change == oracle.transition_after(ts, ts + 2 * 366 * 86400), (footer, ts)
        if change is None:
            break
        ts = change


def test_zero_based_rule_days_count_february_29():
    """POSIX 'n' (0-365, leap days counted): day 59 is 1 March, or 29 February in a leap year, as
    glibc reads it (TZ='XXX-2YYY-3,59/2,300/2' date). zoneinfo starts it one day early, so glibc's
    answers are written here. A rule without dates takes POSIX's default, the US rules."""
    zone = tzfile.parse_tzif(_tzif("XXX-2YYY-3,59/2,300/2"))
    at = lambda *args: zone.offset_at(int(utc(*args).timestamp()))  # noqa: E731
    assert (at(2026, 2, 28, 12), at(2026, 3, 1, 12), at(2028, 2, 28, 12), at(2028, 2, 29, 12)) == (
        7200, 10800, 7200, 10800)
    assert (at(2026, 10, 27, 22, 59), at(2026, 10, 27, 23, 1)) == (10800, 7200)  # day 300 (28 Oct) 02:00 local
    us = tzfile.parse_tzif(_tzif("EST5EDT"))
    assert us.transition_after(int(utc(2026, 1, 1).timestamp()), 2 ** 40) == int(utc(2026, 3, 8, 7).timestamp())


def test_version_1_data_alone_is_read():
    data = Path("/usr/share/zoneinfo/America/New_York").read_bytes()
    counts = struct.unpack(">6l", data[20:44])
    isut, isstd, leap, timecnt, typecnt, charcnt = counts
    size = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
    v1 = data[:4] + b"\0" + data[5:size]
    ours = tzfile.parse_tzif(v1)
    assert ours.rule is None and len(ours.times) > 100
    oracle = tzfile.ZoneinfoZone(zoneinfo.ZoneInfo("America/New_York"))
    r = random.Random(1)
    for _ in range(3000):
        ts = r.randrange(-2 ** 31, 2 ** 31 - 366 * 86400)
        assert ours.offset_at(ts) == oracle.offset_at(ts)


@pytest.mark.parametrize("content", [b"", b"not a zone", b"TZif2" + bytes(10), _tzif("nonsense 5"),
                                     _tzif("UTC0", times=(0,), types=(3,)), _tzif("UTC0")[:60]])
def test_a_file_that_is_not_a_zone_is_not_found(tmp_path, content):
    (tmp_path / "Bad").write_bytes(content)
    with pytest.raises(tzfile.ZoneNotFound):
        tzfile.read_zone_file("Bad", path=[str(tmp_path)])


def test_a_footer_cut_short_is_ignored_like_a_missing_one():
    zone = tzfile.parse_tzif(_tzif("CET-1CEST,M3.5.0/3,M10.5.0", offsets=(3600,))[:-1])
    assert zone.rule is None and zone.offset_at(1782864000) == 3600  # July: no DST without the rule


def test_zone_files_are_found_only_under_the_zone_folders(tmp_path):
    (tmp_path / "Europe").mkdir()
    (tmp_path / "Europe" / "Here").write_bytes(Path("/usr/share/zoneinfo/Europe/Vienna").read_bytes())
    assert tzfile.read_zone_file("Europe/Here", path=[str(tmp_path)]).offset_at(1782864000) == 7200
    with pytest.raises(tzfile.ZoneNotFound):
        tzfile.read_zone_file("Europe/Vienna", path=[str(tmp_path)])


# --- Python 3.8 (no zoneinfo): the same answers from the TZif reader ----------------------------

def _python38():
    for exe in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8"))):
        if subprocess.run([exe, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
                          capture_output=True).returncode == 0:
            return exe
    return None


CASES = [("cron", "30 2 * * *", "Europe/Vienna", 1774656000), ("cron", "30 2 * * *", "Europe/Vienna", 1792800000),
         ("every", "1h", "Australia/Lord_Howe", 1775307600), ("cron", "15 2 * * *", "Australia/Lord_Howe", 1791072000),
         ("cron", "*/20 1 * * *", "America/New_York", 1793491200), ("every", "1d", "America/Havana", 1772841600),
         ("cron", "0 0 29 2 *", "Asia/Kolkata", 4068000000), ("every", "10m", "UTC", 1767225600)]
SCRIPT = """
import json, sys
from datetime import datetime, timedelta, timezone
from app.agent.schedule import parse_schedule
out, zones = [], set()
for kind, text, tz, start in json.loads(sys.argv[1]):
    s = parse_schedule(tz=tz, **{kind: text})
    zones.add(type(s.zone).__name__)
    a = datetime.fromtimestamp(start, timezone.utc)
    out.append([t.isoformat() for t in s.due_between(a, a + timedelta(days=3))] + [s.next_after(a).isoformat()])
print(json.dumps([sorted(zones), out]))
"""


@pytest.mark.skipif(_python38() is None, reason="no Python 3.8 interpreter on this machine (pyenv 3.8 has one)")
def test_python38_without_zoneinfo_gives_the_same_due_times():
    def run(python):
        done = subprocess.run([python, "-c", SCRIPT, json.dumps(CASES)], capture_output=True, text=True,
                              cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
        return json.loads(done.stdout)
    kind38, on38 = run(_python38())
    kind_here, here = run(sys.executable)
    assert (kind38, kind_here) == (["FixedZone", "TzifZone"], ["FixedZone", "ZoneinfoZone"])
    assert on38 == here and sum(len(due) for due in here) > 100
