"""One audit event as it is recorded: its fields and the "started" outcome. Apart from log.py (which
writes events) so that query.py (which reads them) needs neither: no cycle between the two."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.agent.journal import utc_now

from .actor import local_actor_label

FIELDS = ("ts", "actor", "ssh_user", "server", "model", "version", "sha256", "action", "outcome", "old", "new",
          "reason", "detail", "ref", "origin")
STARTED = "started"


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
    old: str = ""
    new: str = ""
    reason: str = ""
    ref: str = ""
    origin: str = ""
    pid: int = 0
    actor: str = field(default_factory=local_actor_label)
    ts: str = field(default_factory=utc_now)  # the agent's journal writes the same form
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
