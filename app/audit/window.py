"""Random access into a filtered audit log of a million events, for the Audit view's lazy table.

SQLite's OFFSET walks every row it skips (measured with 1,000,000 events: 2 ms at the top, 1.3 s
in the middle, 2.6 s at the end), so the view reads the filter's ordered `seq` list once (8 bytes
a row, ~2 s for a million, in the background) and then fetches any page by `seq in (...)` in
2 ms wherever it is. Until that list is there, `rows_at` reads from whichever end is nearer.

Filters become SQL in query.py only (`where_sql`, `select_events`); this module adds the seq list
and the snapshot a refresh reads. It runs on a worker thread and knows nothing of Qt."""
from __future__ import annotations

from array import array
from contextlib import contextmanager

from .cells import cells
from .query import (NEWEST_FIRST, AuditFilter, count_events, filter_choices, query_events, select_events,
                    where_sql)


@contextmanager
def snapshot(db):
    """One read transaction: the count, the first page and the seq list agree with each other."""
    conn = db.conn
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        yield
    finally:
        if own and conn.in_transaction:
            conn.execute("COMMIT")


def head_seq(db) -> int:
    return db.execute("select coalesce(max(seq), 0) from events").fetchone()[0]


def read_seqs(db, flt: AuditFilter, after: int = 0) -> array:
    """The filter's seqs in display order (newest first); only those above `after` when given."""
    where, args = where_sql(flt, "seq > ?" if after else "", [after] if after else [])
    cursor = db.execute(f"select seq from events{where} order by {NEWEST_FIRST}", args)
    out = array("q")
    while chunk := cursor.fetchmany(20000):
        out.extend(r[0] for r in chunk)
    return out


def rows_by_seq(db, seqs) -> list[dict]:
    """The events with these seqs, in the order given (at most a page: SQLite's variable limit)."""
    seqs = list(seqs)
    if not seqs:
        return []
    found = {row["seq"]: row for row in select_events(db, f" where seq in ({', '.join('?' * len(seqs))})", seqs)}
    return prepare([found[s] for s in seqs if s in found])


def rows_at(db, flt: AuditFilter, offset: int, limit: int, total: int) -> list[dict]:
    """Rows `offset`.. of the filter, newest first, read from the nearer end of the log."""
    if offset <= total - offset - limit:
        return prepare(query_events(db, flt, limit, offset))
    count = max(0, min(limit, total - offset))
    oldest = query_events(db, flt, count, total - offset - count, oldest_first=True)
    return prepare(oldest[::-1])


def position_of(db, flt: AuditFilter, event_id: str) -> int:
    """Where event `event_id` is in the filter's newest-first order, or -1 when the filter hides it."""
    found = db.execute("select seq, ts from events where id = ?", [event_id]).fetchone()
    if not found or found[0] is None:
        return -1
    seq, ts = found
    if not count_events(db, flt, "seq = ?", [seq]):
        return -1
    return count_events(db, flt, "(ts > ? or (ts = ? and seq > ?))", [ts, ts, seq])


class Snapshot:
    """What a refresh reads: the total, the first page, the log's head seq and, when cheap or
    reusable, the filter's ordered seq list and the filter choices (else `read_rest` reads them)."""

    def __init__(self, flt, total, rows, head, seqs=None, choices=None, added=-1):
        self.filter, self.total, self.rows, self.head = flt, total, rows, head
        self.seqs, self.choices = seqs, choices
        self.added = added  # rows new since the previous snapshot, all at the top (-1: not that case)


def read_snapshot(db, flt: AuditFilter, page: int, previous: Snapshot | None = None,
                  small: int = 50000) -> Snapshot:
    """Read a refresh. With the same filter as `previous`, events recorded since are put in front of
    its seq list when they all sort above it (the usual case) and the choices are extended with what
    they add; otherwise both are read here when the log is small, and left to `read_rest` (a second
    task: ~2 s each for a million events) when it is not."""
    with snapshot(db):
        head = head_seq(db)
        total = count_events(db, flt)
        rows = prepare(query_events(db, flt, page, 0))
        seqs = choices = None
        added = -1
        if previous is not None and previous.choices is not None and previous.head <= head:
            choices = _merged(previous.choices, filter_choices(db, after=previous.head))
        if previous is not None and previous.filter == flt and previous.seqs is not None:
            new = read_seqs(db, flt, after=previous.head) if head > previous.head else array("q")
            if len(previous.seqs) + len(new) == total and _sorts_above(db, new, previous.seqs):
                seqs, added = new + previous.seqs, len(new)
        if head <= small:
            seqs = read_seqs(db, flt) if seqs is None else seqs
            choices = filter_choices(db) if choices is None else choices
    return Snapshot(flt, total, rows, head, seqs, choices, added)


def read_rest(db, snap: Snapshot) -> tuple:
    """(seqs, choices): what `read_snapshot` left out, each None when it was there already."""
    with snapshot(db):
        seqs = read_seqs(db, snap.filter) if snap.seqs is None else None
        choices = filter_choices(db) if snap.choices is None else None
    return seqs, choices


def prepare(rows: list[dict]) -> list[dict]:
    """Each row's cells as the table shows them, formatted here on the worker thread (parsing a
    time for every paint would cost the GUI thread a few ms a frame)."""
    for row in rows:
        row["cells"] = cells(row)
    return rows


def _merged(old: dict, new: dict) -> dict:
    return {k: sorted(set(old.get(k, [])) | set(new.get(k, []))) for k in set(old) | set(new)}


def _sorts_above(db, new, old) -> bool:
    if not new or not old:
        return True
    oldest_new = db.execute("select ts from events where seq = ?", [new[-1]]).fetchone()[0]
    newest_old = db.execute("select ts from events where seq = ?", [old[0]]).fetchone()[0]
    return oldest_new >= newest_old  # equal: the new one's larger seq sorts it first
