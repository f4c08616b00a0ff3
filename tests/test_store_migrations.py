"""Each Berth SQLite file runs its own migrations: berth.sqlite the store's (app/store/db.py), the
monitor history its own (app/monitor/history.py). Files made when one list served both (every
migration ran in each file) still open as they are: nothing runs again, no table or row is lost."""
import sqlite_utils

from app.audit.chain import verify
from app.audit.log import AuditLog
from app.monitor import history
from app.monitor.history import History
from app.store import db as store
from app.store.db import migrate, open_db
from app.store.servers import ServerConfig, ServerRegistry

# the single list of before the split, in its order: 0004_monitor ran between 0003 and 0005
OLD = store.MIGRATIONS[:3] + history.MIGRATIONS + store.MIGRATIONS[3:]
SAMPLE = {"server": "box", "ts": 1_800_000_000.0, "interval_s": 1.0,
          "host": {"cpu_percent": 12.5, "load": [0.5, 0.4, 0.3], "memory": {"total": 8, "used": 4, "available": 4},
                   "disk": {"path": "/srv", "total": 1000, "used": 250, "free": 750}},
          "models": {}}


def _tables(db) -> set[str]:
    return set(db.table_names())


def _recorded(db) -> list[str]:
    return sorted(r[0] for r in db.execute("select name from migrations"))  # open_db's or sqlite_utils' handle


def test_old_list_is_the_two_lists_together():
    assert [n for n, _ in OLD][:7] == ["0001_servers", "0002_events", "0003_server_auth", "0004_monitor",
                                   "0005_audit_chain", "0006_server_ssh", "0007_remote_activity"]


def test_each_file_runs_only_its_own_migrations(tmp_path):
    main = open_db(tmp_path / "berth.sqlite")
    assert _recorded(main) == sorted(n for n, _ in store.MIGRATIONS)
    assert "events" in _tables(main) and not {t for t in _tables(main) if t.startswith("monitor_")}
    main.close()
    h = History(tmp_path / "monitor.sqlite")
    assert _recorded(h.db) == ["0004_monitor"]
    assert _tables(h.db) == {"migrations", "monitor_series", "monitor_host_raw", "monitor_model_raw",
                             "monitor_host_minute", "monitor_model_minute", "monitor_gaps", "monitor_rollup",
                             "monitor_latest"}
    h.close()


def test_files_made_by_the_single_list_still_open(tmp_path):
    for name in ("berth.sqlite", "monitor.sqlite"):  # what every Berth before the split left behind
        db = sqlite_utils.Database(tmp_path / name)
        assert migrate(db, OLD) == [n for n, _ in OLD]
        db.close()
    old_main = sqlite_utils.Database(tmp_path / "berth.sqlite")
    log = AuditLog(old_main)
    log.record("deploy", "ok", server="box", model="iris", version="1.0.0")
    log.record("rollback", "ok", server="box", model="iris", version="0.9.0")
    ServerRegistry(old_main).save(ServerConfig(name="box", kind="ssh", host="box.example", user="deploy"))
    main_tables = _tables(old_main)
    old_main.close()
    h = History(tmp_path / "monitor.sqlite")
    h.add(SAMPLE)
    h.close()
    old_monitor = sqlite_utils.Database(tmp_path / "monitor.sqlite")
    monitor_tables = _tables(old_monitor)
    old_monitor.close()

    main = open_db(tmp_path / "berth.sqlite")
    assert migrate(main) == [] and _recorded(main) == sorted(n for n, _ in OLD)
    assert _tables(main) == main_tables  # the old, empty monitor tables stay: nothing is dropped
    assert [e["action"] for e in AuditLog(main).list()] == ["rollback", "deploy"]
    assert verify(main.conn).ok and verify(main.conn).checked == 2
    assert ServerRegistry(main).get("box").host == "box.example"
    main.close()
    h = History(tmp_path / "monitor.sqlite")
    assert migrate(h.db, history.MIGRATIONS) == [] and _recorded(h.db) == sorted(n for n, _ in OLD)
    assert _tables(h.db) == monitor_tables
    assert h.latest("box") == SAMPLE
    h.close()


def test_berths_started_at_the_same_moment_migrate_one_file_once(tmp_path):
    """Two windows, or a window and `berth status`, started at once on a new Berth home: each read "no
    migration done", ran the first one, and all but one stopped with "berth.sqlite is damaged (table
    servers already exists)". The first takes the write lock, the others wait and find them done."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    path = tmp_path / "berth.sqlite"
    go = tmp_path / "go"
    code = ("import os, sys, time\nfrom app.store.db import open_db\nimport sqlite_utils\n"
            f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n"
            f"open_db({str(path)!r}).close()\n")
    env = dict(os.environ, PYTHONPATH=str(root))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    go.touch()  # all three imported and waiting: they open the new file together
    ends = [(p.communicate(timeout=60)[1], p.returncode) for p in procs]
    assert [err for err, rc in ends if rc != 0] == []
    db = open_db(path)
    try:
        assert _recorded(db) == sorted(name for name, _ in store.MIGRATIONS)
    finally:
        db.close()
