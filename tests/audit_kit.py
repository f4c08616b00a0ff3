"""Audit logs to read in tests (shared by test_ui_audit.py and test_audit_window.py)."""
from datetime import datetime, timedelta, timezone

from app.workspace import Workspace

EVENTS = [  # oldest first
    dict(action="server.add", outcome="ok", server="alpha", ssh_user="deploy", detail="deploy@alpha:22"),
    dict(action="deploy", outcome="ok", server="alpha", model="iris", version="1.0.0", ssh_user="deploy"),
    dict(action="deploy", outcome="failed", server="alpha", model="iris", version="2.0.0",
         detail="health check failed: broken on purpose"),
    dict(action="rollback", outcome="ok", server="alpha", model="iris", version="1.0.0"),
    dict(action="deploy", outcome="ok", server="beta", model="wine", version="0.1"),
]


def recorded_events() -> Workspace:
    """A workspace whose log holds EVENTS, one a second from 2024-05-01T10:00:00 UTC (seq 1..5)."""
    ws = Workspace()
    for i, e in enumerate(EVENTS):
        ws.audit.record(ts=f"2024-05-01T10:00:{i:02d}.000+00:00", **e)
    return ws


def fill_log(ws: Workspace, count: int, first: int = 1) -> None:
    """`count` deploys, seq 1..count, one a minute (the chain fields are dummies)."""
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [(f"id{seq}", (start + timedelta(minutes=seq)).isoformat(timespec="milliseconds"), "ops@desk", "s",
             "m", f"v{seq}", "deploy", "ok", seq) for seq in range(first, first + count)]
    with ws.db.conn:
        ws.db.conn.executemany("insert into events (id, ts, actor, server, model, version, action, outcome, seq)"
                               " values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
