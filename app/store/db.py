"""The local SQLite database, with named migrations recorded in a table (applied once, in order)."""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from . import paths

if TYPE_CHECKING:  # loaded on first use: the window paints sooner
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


_MIGRATING = threading.Lock()  # threads of one process open their own connections at the same time
MIGRATIONS = [("0001_servers", _servers), ("0002_events", _events), ("0003_server_auth", _server_auth)]


def open_db(path: Path | None = None) -> sqlite_utils.Database:
    path = Path(path) if path else paths.db_path()
    import sqlite_utils  # imported here: the window paints before the store loads

    db = sqlite_utils.Database(path)
    db.execute("PRAGMA busy_timeout=10000")  # first: the WAL switch and migrations may wait for others
    with _MIGRATING:
        db.execute("PRAGMA journal_mode=WAL")
        migrate(db)
    return db


def migrate(db: sqlite_utils.Database) -> list[str]:
    if "migrations" not in db.table_names():
        db["migrations"].create({"name": str, "applied_at": str}, pk="name")
    done = {r["name"] for r in db["migrations"].rows}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with db.conn:
            fn(db)
            db["migrations"].insert({"name": name, "applied_at": datetime.now(timezone.utc).isoformat()})
        applied.append(name)
    return applied
