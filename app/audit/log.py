"""The local audit log: every deploy, failed deploy, rollback, start, stop and server change."""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .actor import actor_label, local_actor

if TYPE_CHECKING:  # loaded on first use: the window paints sooner
    import sqlite_utils


FIELDS = ("ts", "actor", "ssh_user", "server", "model", "version", "sha256", "action", "outcome", "detail")


@dataclass
class Event:
    action: str
    outcome: str  # "ok" | "failed"
    server: str = ""
    model: str = ""
    version: str = ""
    sha256: str = ""
    detail: str = ""
    ssh_user: str = ""
    actor: str = field(default_factory=lambda: actor_label(local_actor()))
    ts: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class AuditLog:
    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    def record(self, action: str, outcome: str, **fields) -> Event:
        clean = {k: ("" if v is None else str(v)) for k, v in fields.items()}
        event = Event(action=action, outcome=outcome, **clean)
        with self.db.conn:
            self.db["events"].insert(asdict(event))
        return event

    def list(self, limit: int = 1000, server: str | None = None, model: str | None = None) -> list[dict]:
        where, args = [], []
        if server:
            where.append("server = ?")
            args.append(server)
        if model:
            where.append("model = ?")
            args.append(model)
        rows = self.db["events"].rows_where(" and ".join(where) or None, args, order_by="ts desc, rowid desc",
                                            limit=limit)
        return [{k: r[k] for k in ("id",) + FIELDS} for r in rows]
