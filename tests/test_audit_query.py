"""Reading the audit log for the Audit view: filters, paging, counts, choices."""
import sqlite_utils

from app.audit.log import AuditLog
from app.audit.query import AuditFilter, count_events, filter_choices, query_events, read_page
from app.store.db import migrate


def make_log():
    db = sqlite_utils.Database(memory=True)
    migrate(db)
    log = AuditLog(db)
    ts = iter(f"2024-05-01T10:00:{s:02d}.000+00:00" for s in range(60))
    log.record("server.add", "ok", server="alpha", ssh_user="deploy", detail="alpha:22", ts=next(ts))
    log.record("deploy", "ok", server="alpha", model="iris", version="1.0.0", ts=next(ts))
    log.record("deploy", "failed", server="alpha", model="iris", version="2.0.0", detail="broken on purpose",
               ts=next(ts))
    log.record("rollback", "ok", server="alpha", model="iris", version="1.0.0", ts=next(ts))
    log.record("deploy", "ok", server="beta", model="wine", version="0.1", detail="100% done_ok", ts=next(ts))
    return db


def test_newest_first_and_paged():
    db = make_log()
    rows = query_events(db)
    assert [r["action"] for r in rows] == ["deploy", "rollback", "deploy", "deploy", "server.add"]
    assert rows[0]["server"] == "beta" and set(rows[0]) >= {"id", "ts", "actor", "ssh_user", "detail"}
    assert [r["version"] for r in query_events(db, limit=2, offset=1)] == ["1.0.0", "2.0.0"]
    assert count_events(db) == 5


def test_each_filter_narrows():
    db = make_log()
    assert {r["server"] for r in query_events(db, AuditFilter(server="alpha"))} == {"alpha"}
    assert count_events(db, AuditFilter(server="alpha")) == 4
    assert count_events(db, AuditFilter(model="iris")) == 3
    assert count_events(db, AuditFilter(action="deploy")) == 3
    assert count_events(db, AuditFilter(server="alpha", action="deploy")) == 2
    assert [r["version"] for r in query_events(db, AuditFilter(text="BROKEN"))] == ["2.0.0"]  # detail, any case
    assert count_events(db, AuditFilter(text="deploy")) == 4  # the action, and alpha's ssh user
    assert count_events(db, AuditFilter(text="nothing like this")) == 0


def test_text_filter_is_literal():
    db = make_log()
    assert [r["server"] for r in query_events(db, AuditFilter(text="100%"))] == ["beta"]
    assert count_events(db, AuditFilter(text="%")) == 1
    assert count_events(db, AuditFilter(text="done_")) == 1 and count_events(db, AuditFilter(text="_")) == 1


def test_choices_and_page():
    db = make_log()
    choices = filter_choices(db)
    assert {k: choices[k] for k in ("server", "model", "action")} == {
        "server": ["alpha", "beta"], "model": ["iris", "wine"], "action": ["deploy", "rollback", "server.add"]}
    assert len(choices["actor"]) == 1 and "@" in choices["actor"][0]
    page = read_page(db, AuditFilter(model="iris"), limit=2, with_choices=True)
    assert page.total == 3 and len(page.rows) == 2 and page.choices["server"] == ["alpha", "beta"]
    assert read_page(db, AuditFilter()).choices is None
