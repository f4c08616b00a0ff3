"""`berth audit rebuild`: a new database whose log is rebuilt from the server journals, the old one kept."""
from __future__ import annotations

from app.anchoring import anchor_account, sidecar_record
from app.remote.credentials import AskPassphrase
from app.store import paths
from app.store.db import open_db
from app.store.servers import LOCAL, ServerRegistry
from app.workspace import Workspace


def rebuild_audit_log(ask_passphrase: AskPassphrase | None = None) -> tuple[Workspace, list[str]]:
    """A new berth.sqlite whose log is rebuilt from the server journals (`berth audit rebuild`): the
    old file and its anchor are kept beside it (renamed, never deleted), the servers and settings it
    still holds are carried over, and the new log starts under a new desktop id and key, its first
    event saying what was set aside. Returns the new workspace and what was done (for the operator);
    the journals are then imported with `sync_journal` per server."""
    import sqlite3

    from app.agent.journal import utc_now
    from app.remote.credentials import delete_secret
    from app.store.db import DatabaseDamaged

    db_file = paths.db_path()
    servers, settings, said = [], [], []
    if db_file.exists() and db_file.stat().st_size:
        try:
            old = open_db(db_file)
            try:
                servers = [s for s in ServerRegistry(old).list() if s.name != LOCAL]
                settings = list(old.conn.execute("select key, value from settings"))
            finally:
                old.close()
        except (DatabaseDamaged, sqlite3.DatabaseError) as e:
            why = e.detail.get("error") if isinstance(e, DatabaseDamaged) else str(e)
            said.append(f"{db_file.name} could not be read ({why}), so no servers were carried over: add them again "
                        "(berth server add), then berth audit sync")
    stamp = utc_now().replace(":", "").replace("-", "")[:15]
    moved = []
    for suffix in ("", "-wal", "-shm"):
        part = db_file.with_name(db_file.name + suffix)
        if part.exists():
            target = db_file.with_name(f"{db_file.name}.before-rebuild-{stamp}{suffix}")
            part.rename(target)
            moved.append(target)
    anchor_file = db_file.with_suffix(".anchor")
    old_anchor = sidecar_record(anchor_file)
    if anchor_file.exists():
        anchor_file.rename(anchor_file.with_name(f"{anchor_file.name}.before-rebuild-{stamp}"))
    delete_secret(anchor_account(db_file))  # a new key and desktop id: the old heads belong to the old log
    ws = Workspace(ask_passphrase=ask_passphrase)
    for server in servers:
        ws.servers.save(server)
    for key, value in settings:
        ws.db.execute("insert or replace into settings (key, value) values (?, ?)", [key, value])
    ws.db.conn.commit()
    was = (f"the old anchor said {old_anchor.get('seq')} events, head {str(old_anchor.get('hash'))[:16]} "
           f"(desktop {old_anchor.get('desktop')}, {old_anchor.get('at')})" if old_anchor else "no old anchor")
    detail = (f"rebuilt from the server journals; the old database was kept as "
              f"{moved[0].name if moved else '(none)'}; {was}; {len(servers)} server(s) carried over")
    ws.audit.record("audit.rebuild", "ok", detail=detail)
    return ws, said + [detail]
