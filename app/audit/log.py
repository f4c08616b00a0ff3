"""The local audit log: every deploy, failed deploy, rollback, start, stop and server change,
hash-chained (chain.py). An action that takes time is two events: "started", committed before the
action begins, and its outcome (`ref` = the started event's id), committed after; a started event
that never got an outcome is shown as interrupted (query.py)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .chain import append, head
from .event import STARTED, Event
from .query import AuditFilter, query_events

if TYPE_CHECKING:  # loaded on first use: the window paints sooner
    import sqlite_utils


class AuditLog:
    def __init__(self, db: sqlite_utils.Database, anchor=None):
        """`anchor` (anchor.Anchor) is told every head committed here; by default the one the
        workspace attached to `db` (`db.audit_anchor`), so every writer on that handle keeps it current."""
        self.db = db
        self.anchor = anchor if anchor is not None else getattr(db, "audit_anchor", None)

    def record(self, action: str, outcome: str, **fields) -> Event:
        """Append one event (committed when this returns). Values are kept as text; None is empty."""
        pid = int(fields.pop("pid", 0) or 0)
        clean = {k: ("" if v is None else str(v)) for k, v in fields.items()}
        event = Event(action=action, outcome=outcome, pid=pid, **clean)
        conn = self.db.conn
        # before the append: an anchor attached on first use checks the log as it was (app/anchoring.py)
        anchor = self.anchor.attached() if self.anchor is not None else None
        committed = not conn.in_transaction  # inside a caller's transaction: the caller anchors after it
        row = append(conn, dict(event.__dict__))  # asdict deep-copies: 20 % of an append
        if committed and anchor is not None:
            anchor.update(row["seq"], row["hash"], conn, row["prev_hash"])
        event.ts = row["ts"]
        return event

    def desktop_head(self) -> dict:
        """What a change sends the agent to write into the server's journal: this desktop's id and
        the chain's head now (a committed prefix of the log)."""
        seq, hash_ = head(self.db.conn)
        return {"desktop": getattr(self.anchor, "desktop", ""), "seq": seq, "hash": hash_}

    def begin(self, action: str, **fields) -> Event:
        """The "started" event of an action about to begin; it names this process so a reader can
        tell one still running from one whose process died."""
        fields.setdefault("pid", os.getpid())
        return self.record(action, STARTED, **fields)

    def finish(self, started: Event, outcome: str, **fields) -> Event:
        """The outcome of `started`, carrying its facts unless `fields` says otherwise."""
        facts = {k: getattr(started, k) for k in ("server", "ssh_user", "model", "version", "sha256", "old", "new",
                                                   "reason")}
        facts.update({k: v for k, v in fields.items() if v not in (None, "") or k == "detail"})
        return self.record(started.action, outcome, ref=started.id, **facts)

    def list(self, limit: int = 1000, server: str | None = None, model: str | None = None) -> list[dict]:
        return query_events(self.db, AuditFilter(server=server or "", model=model or ""), limit=limit)
