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
SEP = "\x1f"  # ASCII unit separator: nobody types it; append() replaces it in stored text
_sha256 = hashlib.sha256
# the hashed text of each row, joined by SQLite itself (C, not a Python loop over 18 fields)
_BODY = " || char(31) || ".join(f"coalesce({c}, 'None')" for c in CHAINED)
_WALK = f"select seq, prev_hash, hash, {_BODY} from events where seq is not null order by seq"


def event_hash(prev_hash: str, values) -> str:
    """sha256 of `prev \x1f field \x1f field ...` (UTF-8; each field as text, NULL as "None"). No
    stored text holds \x1f (`append` replaces it), so the fields split only one way; a row that
    holds one anyway was not written by Berth and never matches. Cheap to recompute anywhere."""
    body = SEP.join(map(str, values))
    if body.count(SEP) != len(CHAINED) - 1:
        raise ValueError("a field holds the field separator (\\x1f): not written by Berth")
    return _sha256(f"{prev_hash}{SEP}{body}".encode()).hexdigest()


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
        row = {k: v.replace(SEP, " ") if isinstance(v, str) else v for k, v in row.items()}
        row.update(seq=seq + 1, prev_hash=prev)
        row["hash"] = event_hash(prev, [row.get(k, "") for k in CHAINED])
        columns = list(row)
        conn.execute(f"insert into events ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
                     [row[c] for c in columns])
        set_head(conn, row["seq"], row["hash"])
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own and conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return row


def set_head(conn, seq: int, hash_: str) -> None:
    """Where the chain ends, kept apart from the rows (so a cut tail is seen)."""
    conn.execute("insert or replace into audit_meta (key, value) values ('head', ?)", [f"{seq} {hash_}"])


def rechain_all(conn: sqlite3.Connection) -> int:
    """Give every event a seq and hash in recorded order (the migration that introduced the chain)."""
    text = [k for k in CHAINED if k not in ("seq", "pid")]
    conn.execute("update events set " + ", ".join(f"{k} = replace({k}, char(31), ' ')" for k in text))
    rows = conn.execute("select rowid, * from events order by ts, rowid").fetchall()
    names = ["rowid"] + [d[0] for d in conn.execute("select * from events limit 0").description]
    prev, updates = GENESIS, []
    for seq, raw in enumerate(rows, 1):
        r = dict(zip(names, raw), seq=seq)
        h = event_hash(prev, [r.get(k, "") for k in CHAINED])
        updates.append((seq, prev, h, r["rowid"]))
        prev = h
    conn.executemany("update events set seq = ?, prev_hash = ?, hash = ? where rowid = ?", updates)
    set_head(conn, len(rows), prev)
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
    separators, sha256, sep = len(CHAINED) - 1, _sha256, SEP
    for seq, stored_prev, stored_hash, body in conn.execute(_WALK):
        # event_hash, inlined: this loop runs a million times for a million events
        if (seq == expected and stored_prev == prev and body.count(sep) == separators
                and sha256(f"{prev}{sep}{body}".encode()).hexdigest() == stored_hash):
            prev, expected, n = stored_hash, seq + 1, n + 1
            if progress and n % 50000 == 0:
                progress(n)
            continue
        if seq != expected:
            bad = (f"events #{expected}–#{seq - 1} are missing (deleted)" if seq > expected
                   else f"event #{seq} appears twice")
        elif stored_prev != prev:
            bad = "the link to the event before does not match: an event before it was deleted, inserted or moved"
        elif body.count(sep) != separators:
            bad = "a field holds the field separator (\\x1f): not written by Berth"
        else:
            bad = "its content was changed after it was recorded"
        row = conn.execute("select seq, id, ts, action from events where seq = ?", [seq]).fetchone()
        return Verdict(False, n, prev, bad, dict(zip(("seq", "id", "ts", "action"), row)))
    if unchained:
        return Verdict(False, n, prev, "an event was inserted outside the chain",
                       {"seq": None, "id": unchained[0], "ts": unchained[1], "action": unchained[2]})
    meta = conn.execute("select value from audit_meta where key = 'head'").fetchone()
    if meta:
        head_seq, head_hash = meta[0].split(" ")
        if int(head_seq) != n or head_hash != prev:
            return Verdict(False, n, prev, f"the log ends at event #{n} but event #{head_seq} was recorded: "
                                           "events were removed from the end")
    return Verdict(True, n, prev)
