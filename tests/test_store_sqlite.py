"""Berth's own SQLite handle (app/store/sqlite.py) behaves as sqlite_utils' did for the calls Berth
makes, so code written against either stays right: a write commits unless a transaction is open, a
failed one leaves none open; the server list is plain SQL on it. Real files, a second connection."""
import sqlite3

import pytest

from app.store.db import open_db
from app.store.servers import ServerConfig, ServerRegistry, UnknownServer


def other_reader(path):
    return sqlite3.connect(path)


def test_a_write_commits_by_itself_and_a_failed_one_leaves_no_transaction(tmp_path):
    db = open_db(tmp_path / "berth.sqlite")
    db.execute("insert into settings (key, value) values (?, ?)", ["a", "1"])
    assert not db.conn.in_transaction
    assert other_reader(tmp_path / "berth.sqlite").execute("select value from settings").fetchall() == [("1",)]
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("insert into settings (key, value) values (?, ?)", ["a", "2"])
    assert not db.conn.in_transaction
    db.execute("insert into settings (key, value) values (?, ?)", ["b", "2"])  # not captured by a stale one
    assert len(other_reader(tmp_path / "berth.sqlite").execute("select * from settings").fetchall()) == 2
    db.close()


def test_inside_a_transaction_a_write_waits_for_it(tmp_path):
    db = open_db(tmp_path / "berth.sqlite")
    db.execute("BEGIN IMMEDIATE")  # as the journal import opens its own
    db.execute("insert into settings (key, value) values (?, ?)", ["a", "1"])
    assert db.conn.in_transaction
    db.execute("ROLLBACK")
    assert db.execute("select count(*) from settings").fetchone() == (0,)
    assert set(db.table_names()) >= {"servers", "events", "settings", "migrations"}
    db.close()


def test_the_server_list_saves_updates_and_removes_with_plain_sql(tmp_path):
    db = open_db(tmp_path / "berth.sqlite")
    servers = ServerRegistry(db)
    servers.save(ServerConfig(name="web-2", host="a.example", user="deploy"))
    servers.save(ServerConfig(name="web-1", host="b.example", port=2222, connect_timeout=2.5))
    servers.save(ServerConfig(name="web-2", host="c.example", user="ops"))  # the same name: updated
    assert [s.name for s in servers.list()] == ["local", "web-1", "web-2"]
    assert (servers.get("web-2").host, servers.get("web-2").user) == ("c.example", "ops")
    assert (servers.get("web-1").port, servers.get("web-1").connect_timeout) == (2222, 2.5)
    servers.remove("web-1")
    assert not servers.exists("web-1") and servers.exists("local")
    with pytest.raises(UnknownServer):
        servers.remove("web-1")
    with pytest.raises(ValueError):
        servers.save(ServerConfig(name="local"))
    db.close()


def test_a_first_migration_imports_no_pandas_and_leaves_it_importable(tmp_path):
    """sqlite_utils imports pandas whenever installed: ~40 MB of a console's RSS once its first start
    created monitor.sqlite. A fresh interpreter, as a first start is."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("pandas")  # otherwise there is nothing to keep out
    code = ("import sys; from app.store.db import open_db; from app.monitor.history import MIGRATIONS; "
            f"open_db({str(tmp_path / 'monitor.sqlite')!r}, MIGRATIONS).close(); "
            "print('sqlite_utils' in sys.modules, 'pandas' in sys.modules); import pandas; print('importable')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False", "importable"]
