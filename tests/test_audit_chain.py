"""The audit log's hash chain: every kind of tampering is found and named, the chain survives the
migration of an older log, filters and states read right, settings and reasons are audited."""
import sqlite_utils
import pytest

from app.audit.chain import verify
from app.audit.log import AuditLog
from app.audit.period import as_bound, parse_time
from app.audit.query import AuditFilter, count_events, query_events
from app.store.db import MIGRATIONS, migrate
from app.workspace import Workspace


def make_log(n=8):
    db = sqlite_utils.Database(memory=True)
    migrate(db)
    log = AuditLog(db)
    for i in range(n):
        log.record("deploy", "ok" if i % 3 else "failed", server="alpha", model="iris", version=f"1.{i}.0",
                   ts=f"2026-11-0{1 + i % 9}T10:00:00.000+00:00", detail=f"event {i}")
    return db


def test_intact_chain_verifies():
    db = make_log()
    verdict = verify(db.conn)
    assert verdict.ok and verdict.checked == 8 and "intact" in verdict.message
    rows = db.execute("select seq, prev_hash, hash from events order by seq").fetchall()
    assert [r[0] for r in rows] == list(range(1, 9))
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, 8))


def test_edited_row_is_named():
    db = make_log()
    db.execute("update events set detail = 'nothing to see' where seq = 3")
    v = verify(db.conn)
    assert not v.ok and v.first_bad["seq"] == 3 and "changed" in v.problem
    assert "#3" in v.message and "BROKEN" in v.message


@pytest.mark.parametrize("column, value", [("outcome", "cancelled"), ("ts", "2020-01-01T00:00:00.000+00:00"),
                                           ("actor", "mallory@elsewhere"), ("version", "9.9.9")])
def test_any_column_edit_is_found(column, value):
    db = make_log()
    db.execute(f"update events set {column} = ? where seq = 5", [value])
    v = verify(db.conn)
    assert not v.ok and v.first_bad["seq"] == 5


def test_deleted_row_is_found():
    db = make_log()
    db.execute("delete from events where seq = 4")
    v = verify(db.conn)
    assert not v.ok and v.first_bad["seq"] == 5 and "#4" in v.problem and "deleted" in v.problem


def test_deleted_and_renumbered_rows_are_found():
    db = make_log()
    db.execute("delete from events where seq = 4")
    db.execute("update events set seq = seq - 1 where seq > 4")
    v = verify(db.conn)
    assert not v.ok and v.first_bad["seq"] == 4 and "link" in v.problem


def test_reordered_rows_are_found():
    db = make_log()
    db.execute("update events set seq = -1 where seq = 3")
    db.execute("update events set seq = 3 where seq = 6")
    db.execute("update events set seq = 6 where seq = -1")
    v = verify(db.conn)
    assert not v.ok and v.first_bad["seq"] == 3


def test_cut_tail_and_foreign_rows_are_found():
    db = make_log()
    db.execute("delete from events where seq >= 7")
    v = verify(db.conn)
    assert not v.ok and "removed from the end" in v.problem

    db = make_log()
    db.execute("insert into events (id, ts, action, outcome) values ('x', '2026-11-02T00:00:00.000+00:00', "
               "'deploy', 'ok')")
    v = verify(db.conn)
    assert not v.ok and "outside the chain" in v.problem and v.first_bad["id"] == "x"


def test_migration_chains_an_older_log():
    db = sqlite_utils.Database(memory=True)
    names = [name for name, _ in MIGRATIONS]
    done = set()
    db["migrations"].create({"name": str, "applied_at": str}, pk="name")
    for name, fn in MIGRATIONS[:names.index("0005_audit_chain")]:
        fn(db)
        db["migrations"].insert({"name": name, "applied_at": "x"})
        done.add(name)
    for i in range(5):
        db["events"].insert({"id": f"old{i}", "ts": f"2024-01-0{5 - i}T00:00:00+00:00", "actor": "a@b",
                             "action": "deploy", "outcome": "ok", "detail": str(i)})
    assert migrate(db)[0] == "0005_audit_chain"
    assert verify(db.conn).ok
    assert [r["id"] for r in db.query("select id from events order by seq")] == [f"old{i}" for i in range(4, -1, -1)]
    AuditLog(db).record("rollback", "ok")
    assert verify(db.conn).checked == 6


def test_started_without_outcome_is_interrupted_and_outcome_closes_it():
    db = make_log(0)
    log = AuditLog(db)
    begun = log.begin("deploy", server="alpha", model="iris", version="2.0.0", pid=999_999_999)
    row = query_events(db)[0]
    assert row["state"] == "interrupted" and row["outcome"] == "started"
    assert count_events(db, AuditFilter(outcome="interrupted")) == 1
    live = log.begin("deploy", server="alpha", model="iris", version="2.0.1")  # this process: still running
    assert query_events(db)[0]["state"] == "in progress"
    log.finish(begun, "failed", detail="health check failed")
    log.finish(live, "ok", old="1.0.0", new="2.0.1")
    rows = query_events(db)
    assert [r["state"] for r in rows] == ["ok", "failed", "started", "started"]
    assert rows[0]["ref"] == live.id and (rows[0]["old"], rows[0]["new"], rows[0]["version"]) == ("1.0.0", "2.0.1",
                                                                                                 "2.0.1")
    assert count_events(db, AuditFilter(outcome="interrupted")) == 0
    assert verify(db.conn).ok


def test_filters_by_time_actor_action():
    db = make_log()
    log = AuditLog(db)
    log.record("deploy.check", "ok", actor="alice@laptop", ts="2026-11-03T12:00:00.000+00:00")
    log.record("deployx", "ok", actor="alicex@laptop", ssh_user="svc", ts="2026-11-03T13:00:00.000+00:00")
    assert count_events(db, AuditFilter(since="2026-11-03", until="2026-11-03")) == 3  # a date: its whole day
    assert count_events(db, AuditFilter(since="2026-11-03T12:30")) == 1 + 5  # 13:00 and days 4-8
    assert count_events(db, AuditFilter(actor="alice")) == 1
    assert count_events(db, AuditFilter(actor="svc")) == 1  # the SSH user
    assert count_events(db, AuditFilter(action="deploy")) == 9  # deploy and deploy.check, not deployx
    assert "actor=alice" in AuditFilter(actor="alice").describe()
    with pytest.raises(ValueError, match="not a time"):
        AuditFilter(since="last tuesday").where()


def test_time_bounds():
    assert as_bound("2026-11-01") == "2026-11-01T00:00:00.000+00:00"
    assert as_bound("2026-11-01", end=True) == "2026-11-01T23:59:59.999+00:00"
    assert as_bound("2026-11-01T10:00+01:00") == "2026-11-01T09:00:00.000+00:00"
    now = parse_time("2026-11-27T12:00")
    assert parse_time("7d", now=now).isoformat().startswith("2026-11-20T12:00")
    assert parse_time("30m", now=now).isoformat().startswith("2026-11-27T11:30")


def test_settings_change_and_required_reason_are_audited(tmp_path):
    ws = Workspace()
    from app.store.servers import ServerConfig

    ws.servers.save(ServerConfig(name="prod1", kind="ssh", host="127.0.0.1", port=22, user="u", root="/srv",
                                 environment="production"))
    ws.check_reason("prod1", "")  # not required yet
    assert ws.set_setting("require_reason_production", "TRUE") == ("false", "true")
    with pytest.raises(ValueError, match="give a reason"):
        ws.check_reason("prod1", "  ")
    ws.check_reason("prod1", "hotfix for ticket 42")
    ws.check_reason("local", "")  # local is not production
    with pytest.raises(ValueError, match="must be one of"):
        ws.set_setting("require_reason_production", "maybe")
    with pytest.raises(ValueError, match="no setting"):
        ws.set_setting("colour", "blue")
    rows = query_events(ws.db)
    assert [(r["action"], r["outcome"]) for r in rows] == [("permission.denied", "failed"), ("settings.change", "ok")]
    assert (rows[1]["old"], rows[1]["new"], rows[1]["detail"]) == ("false", "true", "require_reason_production")
