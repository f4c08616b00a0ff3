"""The audit log's anchor as this desktop keeps it: the HMAC key and the desktop id in the keyring
(one entry per database file), the head in a sidecar beside the database (app/audit/anchor.py).
Apart from the Workspace so the rules of the anchor's keys can be read (and tested) alone."""
from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path

from app.audit.anchor import Anchor
from app.remote.credentials import get_secret, set_secret


def anchor_account(db_file: Path) -> str:
    """The keyring entry holding one log's anchor key and desktop id (one per database file)."""
    return f"audit-anchor:{db_file.resolve()}"


def attach_anchor(db) -> Anchor | None:
    """The sidecar anchor of `db`'s file (berth.sqlite -> berth.anchor), checked once now: a log that
    contradicts it leaves it frozen. The HMAC key and the desktop id are kept in the keyring; the id
    also in the sidecar and in `audit_meta`, so it survives any one of the three being lost. A new
    log with no anchor anywhere gets a fresh key (none without a secure keyring) and id. None for a
    database with no file (in memory)."""
    file = _db_file(db)
    if not file:
        return None
    db_file = Path(file)
    path = db_file.with_suffix(".anchor")
    stored = _anchor_secret(get_secret(anchor_account(db_file)))
    meta = dict(db.conn.execute("select key, value from audit_meta where key in ('desktop', 'anchored')"))
    sidecar = _sidecar_desktop(path)
    desktop = (stored or {}).get("desktop") or sidecar or meta.get("desktop") or uuid.uuid4().hex
    key = bytes.fromhex(stored["key"]) if stored else None
    if stored is None and not path.exists() and not meta.get("anchored"):
        key = secrets.token_bytes(32)  # a log anchored for the first time
        try:
            set_secret(anchor_account(db_file), json.dumps({"key": key.hex(), "desktop": desktop}))
        except Exception:  # noqa: BLE001 no keyring, or a locked or failing one: unauthenticated, verify says so
            key = None
    anchor = Anchor(path, desktop, key, expected=stored is not None or bool(meta.get("anchored")))
    if meta.get("desktop") != desktop or not meta.get("anchored"):
        with db.conn:
            db.conn.executemany("insert or replace into audit_meta (key, value) values (?, ?)",
                                [("desktop", desktop), ("anchored", "1")])
    if not anchor.start(db.conn).ok:
        return anchor
    if not path.exists():
        from app.audit.chain import head

        anchor.update(*head(db.conn))
    return anchor


def anchor_on_first_use(db) -> LaterAnchor | None:
    """attach_anchor(db) when the anchor is first needed, not now; None for a database in memory."""
    return LaterAnchor(db) if _db_file(db) else None


class LaterAnchor:
    """`db`'s anchor, attached (the keyring read, the log checked against berth.anchor) the first
    time anything asks for it: a read-only command (`berth status`, `monitor --once`) never pays the
    keyring (0.1-0.5 s per workspace). Every writer asks first: AuditLog.record takes `attached()`
    before it appends, JournalSync before it compares or imports a journal, so the log is still
    checked against its anchor before anything is written to it; verify checks it as before."""

    def __init__(self, db):
        self._db, self._anchor = db, None

    def attached(self) -> Anchor:
        if self._anchor is None:
            self._anchor = attach_anchor(self._db)
        return self._anchor

    def __getattr__(self, name):  # desktop, check, update, frozen...: the attached anchor's
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.attached(), name)

    def close(self) -> None:
        if self._anchor is not None:
            self._anchor.close()


def _db_file(db) -> str:
    return next((r[2] for r in db.conn.execute("pragma database_list") if r[1] == "main"), "")


def _anchor_secret(text: str | None) -> dict | None:
    """The keyring entry ({"key": hex, "desktop": id}), or None when there is none (or it is not one)."""
    if not text:
        return None
    try:
        found = json.loads(text)
        bytes.fromhex(found["key"])
        return found
    except (ValueError, TypeError, KeyError):
        return None


def _sidecar_desktop(path: Path) -> str:
    """The desktop id a sidecar names, read without trusting it (only to keep the id stable)."""
    try:
        return str(json.loads(path.read_bytes().decode("utf-8").strip()).get("desktop") or "")
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        return ""


def sidecar_record(path: Path) -> dict:
    try:
        found = json.loads(path.read_bytes().decode("utf-8").strip())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
