"""Random access into a filtered audit log (app/audit/window.py): pages from either end, by seq,
an event's position, and refreshes that reuse what the previous read knew. Plain pytest, no Qt."""
from app.audit.cells import KEYS
from app.audit.query import AuditFilter, filter_choices, query_events
from app.audit.window import position_of, read_rest, read_seqs, read_snapshot, rows_at, rows_by_seq
from audit_kit import fill_log, recorded_events


def column(name: str) -> int:
    return KEYS.index(name)


def test_rows_at_reads_from_the_nearer_end():
    events = recorded_events()
    fill_log(events, 300, first=6)
    flt, total = AuditFilter(server="s"), 300
    every = query_events(events.db, flt, 1000, 0)
    seqs = read_seqs(events.db, flt)
    assert list(seqs) == [r["seq"] for r in every]
    for offset in (0, 100, 140, 250, 290):
        for got in (rows_at(events.db, flt, offset, 20, total), rows_by_seq(events.db, seqs[offset:offset + 20])):
            assert [r["seq"] for r in got] == [r["seq"] for r in every[offset:offset + 20]]
            assert got[0]["cells"][column("version")] == every[offset]["version"]
            assert {k: v for k, v in got[-1].items() if k != "cells"} == every[offset:offset + 20][-1]


def test_position_of_an_event_in_the_filter_or_minus_one():
    ws = recorded_events()
    every = query_events(ws.db, AuditFilter())
    failed = next(r for r in every if r["outcome"] == "failed")
    assert position_of(ws.db, AuditFilter(), failed["id"]) == every.index(failed)
    assert position_of(ws.db, AuditFilter(server="alpha", model="iris"), failed["id"]) == 1
    assert position_of(ws.db, AuditFilter(server="beta"), failed["id"]) == -1
    assert position_of(ws.db, AuditFilter(), "no-such-id") == -1


def test_a_small_log_is_read_at_once_and_a_refresh_puts_new_events_in_front():
    ws = recorded_events()
    first = read_snapshot(ws.db, AuditFilter(), page=2)
    assert (first.total, first.head, [r["seq"] for r in first.rows]) == (5, 5, [5, 4])
    assert list(first.seqs) == [5, 4, 3, 2, 1] and first.choices == filter_choices(ws.db)
    ws.audit.record("deploy", "ok", server="gamma", model="iris", version="3.0", ts="2024-05-01T10:01:00.000+00:00")
    again = read_snapshot(ws.db, AuditFilter(), page=2, previous=first, small=0)
    assert (again.total, again.added, list(again.seqs)) == (6, 1, [6, 5, 4, 3, 2, 1])
    assert again.choices["server"] == ["alpha", "beta", "gamma"]


def test_a_large_log_leaves_the_order_and_the_choices_to_read_rest():
    ws = recorded_events()
    snap = read_snapshot(ws.db, AuditFilter(server="alpha"), page=10, small=0)
    assert snap.total == 4 and snap.seqs is None and snap.choices is None
    seqs, choices = read_rest(ws.db, snap)
    assert list(seqs) == [4, 3, 2, 1] and choices == filter_choices(ws.db)
    snap.seqs, snap.choices = seqs, choices
    assert read_rest(ws.db, snap) == (None, None)
