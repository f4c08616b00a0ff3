"""The local SQLite database, with named migrations recorded in a table (applied once, in order).

open_db and migrate serve any Berth SQLite file: each file runs its own list (this one: berth.sqlite;
the monitor history's: app/monitor/history.py). Names are never reused between lists: files made
before the lists were split (2026-12) hold every name of both, and nothing runs again."""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from app import errors
from app.errors import BerthError

from . import paths
from .migrations_ssh import server_ssh
from .server_index import migration as server_index
from .sqlite import Database

if TYPE_CHECKING:  # loaded only to run a migration: it imports pandas and numpy (app/store/sqlite.py)
    import sqlite_utils


def _servers(db):
    db["servers"].create({
        "name": str, "kind": str, "host": str, "port": int, "user": str, "key_path": str,
        "root": str, "environment": str, "added_at": str,
    }, pk="name")


def _events(db):
    db["events"].create({
        "id": str, "ts": str, "actor": str, "ssh_user": str, "server": str, "model": str,
        "version": str, "sha256": str, "action": str, "outcome": str, "detail": str,
    }, pk="id")
    db["events"].create_index(["ts"])
    db["events"].create_index(["server", "model"])


def _server_auth(db):
    db["servers"].add_column("auth", str, not_null_default="auto")


def _audit_chain(db):
    """Audit events become a hash chain (app/audit/chain.py): `seq` orders it, each row carries the
    hash of the one before. Outcome events point at their "started" event through `ref`; `origin`
    says where an event was recorded (empty: this desktop; `server:NAME`: imported from that
    server's journal). Existing rows are chained in their recorded order."""
    for column in ("old", "new", "reason", "ref", "origin", "prev_hash", "hash"):
        db["events"].add_column(column, str, not_null_default="")
    db["events"].add_column("pid", int, not_null_default=0)
    db["events"].add_column("seq", int)
    db.execute("CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE audit_sync (server TEXT PRIMARY KEY, last_id TEXT NOT NULL, last_hash TEXT NOT NULL,"
               " last_seq INTEGER NOT NULL, problem TEXT NOT NULL, synced_at TEXT NOT NULL)")
    from app.audit.chain import rechain_all

    rechain_all(db.conn)
    db.execute("CREATE UNIQUE INDEX events_seq ON events (seq)")
    db.execute("CREATE INDEX events_ref ON events (ref) WHERE ref != ''")
    db.execute("CREATE INDEX events_action_ts ON events (action, ts)")
    # the console's windowed view reads the whole order for a filter (ts, seq): 1.9 s -> 0.5 s for a
    # million events; its actor choices read `distinct actor`: 1.7 s -> 57 ms
    db.execute("CREATE INDEX events_ts_seq ON events (ts, seq)")
    db.execute("DROP INDEX IF EXISTS idx_events_ts")  # (ts, seq) serves it: one b-tree less per append
    db.execute("CREATE INDEX events_actor ON events (actor)")


def _remote_activity(db):
    """What Berth ran on each server (app/store/activity.py): newest rows kept, bounded per server."""
    db.execute("CREATE TABLE remote_activity (id INTEGER PRIMARY KEY, server TEXT NOT NULL, ts TEXT NOT NULL,"
               " command TEXT NOT NULL, summary TEXT NOT NULL, seconds REAL NOT NULL, outcome TEXT NOT NULL,"
               " message TEXT NOT NULL, by_hand TEXT NOT NULL)")
    db.execute("CREATE INDEX remote_activity_server ON remote_activity (server, id)")


_MIGRATING = threading.Lock()  # threads of one process open their own connections at the same time
# 0004_monitor moved to app/monitor/history.py: older berth.sqlite files keep its (empty) tables
MIGRATIONS = [("0001_servers", _servers), ("0002_events", _events), ("0003_server_auth", _server_auth),
              ("0005_audit_chain", _audit_chain), ("0006_server_ssh", server_ssh),
              ("0007_remote_activity", _remote_activity)]
MIGRATIONS.append(("0020_server_index", server_index))  # issue 20: where a server's packages come from
Migrations = list[tuple[str, Callable[["sqlite_utils.Database"], None]]]


class DatabaseDamaged(BerthError, RuntimeError):
    """berth.sqlite cannot be read (truncated, overwritten, not SQLite): one line saying which file
    and what to do, never a traceback."""

    default_code = errors.DATABASE_DAMAGED


def damaged(path: Path | None, error: BaseException) -> DatabaseDamaged:
    path = Path(path) if path else paths.db_path()
    return DatabaseDamaged(f"{path} is damaged or not a Berth database ({error}): restore it from a backup, or "
                           "rebuild the audit log from the server journals with `berth audit rebuild` (it keeps "
                           "the damaged file beside it)", detail={"path": str(path), "error": str(error)})


def open_db(path: Path | None = None, migrations: Migrations | None = None) -> Database:
    """Berth's database (default paths.db_path()) or another Berth file, with `migrations` (default
    MIGRATIONS) applied. A file SQLite cannot read raises DatabaseDamaged."""
    path = Path(path) if path else paths.db_path()
    db = Database(path)
    try:
        _prepare(db, migrations)
    except sqlite3.DatabaseError as e:
        db.close()
        raise damaged(path, e) from None
    return db


def _prepare(db, migrations: Migrations | None) -> None:
    db.execute("PRAGMA busy_timeout=10000")  # first: the WAL switch and migrations may wait for others
    with _MIGRATING:
        db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives Berth being killed (not a power cut) without an fsync each
        db.execute("PRAGMA synchronous=NORMAL")
        # checkpoints (the fsyncs) every ~40 MB of log instead of 4 MB, and a page cache that holds a
        # million-event log's hot index pages: appends 2,800 -> 3,800 a second (bench/audit_scale.py)
        db.execute("PRAGMA wal_autocheckpoint=10000")
        db.execute("PRAGMA cache_size=-32000")
        migrate(db, migrations)


def migrate(db: Database | sqlite_utils.Database, migrations: Migrations | None = None) -> list[str]:
    """Apply those of `migrations` (default MIGRATIONS) not recorded yet; returns their names. Checked
    with plain SQL; sqlite_utils (which the migrations are written with) is imported only when one runs."""
    wanted = MIGRATIONS if migrations is None else migrations
    if not _todo(db, wanted):
        return []
    from .sqlite import sqlite_utils_without_pandas

    sqlite_utils = sqlite_utils_without_pandas()

    writer = db if isinstance(db, sqlite_utils.Database) else sqlite_utils.Database(db.conn)
    # Another Berth may be starting on the same new file (two windows, a window and `berth status`):
    # the write lock first, then the list again, so one of them migrates and the others find it done
    # (each read "none done" and ran 0001 again: "table servers already exists", reported as damage).
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        todo = _todo(db, wanted)
        if todo and "migrations" not in writer.table_names():
            writer["migrations"].create({"name": str, "applied_at": str}, pk="name")
        for name, fn in todo:
            fn(writer)
            writer["migrations"].insert({"name": name, "applied_at": datetime.now(timezone.utc).isoformat()})
        db.conn.commit()
    except BaseException:
        db.conn.rollback()
        raise
    return [name for name, _ in todo]


def _todo(db, wanted: Migrations) -> Migrations:
    done = set()
    if "migrations" in db.table_names():
        done = {r[0] for r in db.conn.execute("select name from migrations")}
    return [(name, fn) for name, fn in wanted if name not in done]
