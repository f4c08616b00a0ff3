"""The audit log as a hash chain: each event's hash covers its content and the hash before it, so an
edited, deleted, inserted or reordered row breaks the chain at the first place it touches.

The head (last seq and hash) is also kept in `audit_meta`, so cutting events off the end is seen too.
Anyone who can write the database can rebuild a whole chain; the chain proves the log was not changed
by hand or by accident since it was written, and an exported report carries the head hash to compare."""
from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

# The hashed fields, in this order. Changing it changes every hash: add a migration that rechains.
CHAINED = ("seq", "id", "ts", "actor", "ssh_user", "server", "model", "version", "sha256", "action", "outcome",
           "old", "new", "reason", "detail", "ref", "origin", "pid")
GENESIS = "0" * 64
_sha256 = hashlib.sha256
_SELECT = "select prev_hash, hash, " + ", ".join(CHAINED) + " from events"


def event_hash(prev_hash: str, values) -> str:
    """sha256 of `prev \x1f len:value \x1f len:value ...` (UTF-8; NULL as empty): length-prefixed,
    so text cannot move from one field to the next unseen, and simple to recompute outside Berth."""
    texts = ["" if v is None else str(v) for v in values]
    return _sha256("\x1f".join([prev_hash, *[f"{len(t)}:{t}" for t in texts]]).encode()).hexdigest()


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    row = conn.execute("select seq, hash from events where seq is not null order by seq desc limit 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def append(conn: sqlite3.Connection, row: dict) -> dict:
    """Insert `row` as the next link. The read of the head and the insert are one IMMEDIATE
    transaction, so two processes (the console and the CLI) never chain onto the same head."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        seq, prev = head(conn)
        row = dict(row, seq=seq + 1, prev_hash=prev)
        row["hash"] = event_hash(prev, (row.get(k, "") for k in CHAINED))
        columns = list(row)
        conn.execute(f"insert into events ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
                     [row[c] for c in columns])
        _set_head(conn, row["seq"], row["hash"])
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return row


def _set_head(conn, seq: int, hash_: str) -> None:
    conn.executemany("insert or replace into audit_meta (key, value) values (?, ?)",
                     [("head_seq", str(seq)), ("head_hash", hash_)])


def rechain_all(conn: sqlite3.Connection) -> int:
    """Give every event a seq and hash in recorded order (the migration that introduced the chain)."""
    rows = conn.execute("select rowid, * from events order by ts, rowid").fetchall()
    names = ["rowid"] + [d[0] for d in conn.execute("select * from events limit 0").description]
    prev, updates = GENESIS, []
    for seq, raw in enumerate(rows, 1):
        r = dict(zip(names, raw), seq=seq)
        h = event_hash(prev, (r.get(k, "") for k in CHAINED))
        updates.append((seq, prev, h, r["rowid"]))
        prev = h
    conn.executemany("update events set seq = ?, prev_hash = ?, hash = ? where rowid = ?", updates)
    _set_head(conn, len(rows), prev)
    return len(rows)


@dataclass
class Verdict:
    ok: bool
    checked: int
    head_hash: str
    problem: str = ""
    first_bad: dict | None = None  # seq, id, ts, action of the first event where the chain breaks

    @property
    def message(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked:,} events, head {self.head_hash[:16]}"
        b = self.first_bad or {}
        where = (f"event #{b.get('seq')} ({b.get('ts', '?')}, {b.get('action', '?')}, id {b.get('id', '?')})"
                 if b else "the end of the log")
        return f"audit chain BROKEN at {where}: {self.problem}"

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "head_hash": self.head_hash, "problem": self.problem,
                "first_bad": self.first_bad, "message": self.message}


def verify(conn: sqlite3.Connection, progress=None) -> Verdict:
    """Walk the chain in seq order; name the first event where it breaks. `progress(n)` every 50,000."""
    unchained = conn.execute("select id, ts, action from events where seq is null order by ts limit 1").fetchone()
    prev, expected, n = GENESIS, 1, 0
    for raw in conn.execute(_SELECT + " where seq is not null order by seq"):
        stored_prev, stored_hash, values = raw[0], raw[1], raw[2:]
        seq = values[0]
        bad = None
        if seq != expected:
            bad = (f"events #{expected}–#{seq - 1} are missing (deleted)" if seq > expected
                   else f"event #{seq} appears twice")
        elif stored_prev != prev:
            bad = "the link to the event before does not match: an event before it was deleted, inserted or moved"
        elif event_hash(prev, values) != stored_hash:
            bad = "its content was changed after it was recorded"
        if bad:
            return Verdict(False, n, prev, bad, _describe(values))
        prev, expected, n = stored_hash, seq + 1, n + 1
        if progress and n % 50000 == 0:
            progress(n)
    if unchained:
        return Verdict(False, n, prev, "an event was inserted outside the chain",
                       {"seq": None, "id": unchained[0], "ts": unchained[1], "action": unchained[2]})
    meta = dict(conn.execute("select key, value from audit_meta where key in ('head_seq', 'head_hash')").fetchall())
    if meta and (int(meta.get("head_seq", 0)) != n or meta.get("head_hash", GENESIS) != prev):
        return Verdict(False, n, prev, f"the log ends at event #{n} but event #{meta.get('head_seq')} was recorded: "
                                       "events were removed from the end")
    return Verdict(True, n, prev)


def _describe(values) -> dict:
    d = dict(zip(CHAINED, values))
    return {k: d[k] for k in ("seq", "id", "ts", "action")}
