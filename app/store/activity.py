"""The Remote activity log, kept in the local database: the newest 2,000 entries per server.

Entries come from whatever thread runs the transport (a deploy's upload and agent calls run in a
helper thread), so the log writes through its own connection, shared under a lock."""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict, dataclass, field

from app.agent.journal import utc_now

KEEP = 2000
COLUMNS = ("id", "server", "ts", "command", "summary", "seconds", "outcome", "message", "by_hand")


@dataclass
class Activity:
    """One entry: what ran on `server`, how long it took, how it ended (the transports make them)."""
    server: str
    command: str
    summary: str
    seconds: float
    outcome: str  # "ok", or the error's code
    message: str = ""
    by_hand: str = ""
    ts: str = field(default_factory=utc_now)  # the agent's journal writes the same form


class ActivityLog:
    def __init__(self, db):
        self.db = db
        self._since_prune = 0
        self._lock = threading.Lock()
        self._conn = None

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None:
            path = next((r[2] for r in self.db.execute("pragma database_list") if r[1] == "main"), "")
            if path:
                self._conn = sqlite3.connect(path, check_same_thread=False, timeout=10)
            else:  # an in-memory database (tests): one connection only
                self._conn = self.db.conn
        return self._conn

    def close(self) -> None:
        """Its own connection (a left-open one keeps the WAL's shared memory mapped)."""
        with self._lock:
            if self._conn is not None and self._conn is not self.db.conn:
                self._conn.close()
            self._conn = None

    def record(self, activity: Activity) -> None:
        row = asdict(activity)
        with self._lock, self._writer() as conn:
            conn.execute("insert into remote_activity (server, ts, command, summary, seconds, outcome, message,"
                         " by_hand) values (:server, :ts, :command, :summary, :seconds, :outcome, :message,"
                         " :by_hand)", row)
            self._since_prune += 1
            if self._since_prune >= 100:
                self._since_prune = 0
                conn.execute("delete from remote_activity where server = ? and id <= (select id from "
                             "remote_activity where server = ? order by id desc limit 1 offset ?)",
                             [activity.server, activity.server, KEEP])

    def list(self, server: str, limit: int = 200) -> list[dict]:
        rows = self.db.execute(f"select {', '.join(COLUMNS)} from remote_activity where server = ? "
                               "order by id desc limit ?", [server, limit])
        return [dict(zip(COLUMNS, r)) for r in rows]
