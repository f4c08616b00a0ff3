"""Where a deploy's packages come from (`berth server set NAME --index ...`): the server's own index
(online, today's way), a private index (its password from the keyring, handed to the agent in the
request and to pip's environment there), or none (offline: the wheels resolved here, wheels.py,
sent as content-addressed blobs and installed with `--no-index --find-links`). `auto` decides from
the server's own answer to "does your index answer?" (cached a day)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.bundle import FileEntry
from app.formatting import human_bytes
from app.remote import credentials
from app.store.server_index import ServerIndexes

from .errors import OperationFailed
from .progress import Progress
from .wheelcache import WheelCache, from_settings
from .wheels import resolve


@dataclass
class IndexPlan:
    mode: str  # online | offline | auto | url
    url: str = ""
    password: str = field(default="", repr=False)
    facts: dict | None = None  # the server's last `server_facts`, when fresh
    remember: Callable[[dict], None] | None = None
    cache: WheelCache | None = None


def plan_for(db, settings, server: str) -> IndexPlan | None:
    """The plan for a deploy to `server`; None for the default (the server's own index)."""
    indexes = ServerIndexes(db)
    setting = indexes.get(server)
    if setting.mode == "online":
        return None
    password = (credentials.get_secret(credentials.index_password_account(server)) or "") if setting.mode == "url" else ""
    return IndexPlan(setting.mode, setting.url, password, setting.fresh_facts(),
                     lambda facts: indexes.remember(server, facts), from_settings(settings))


def ask_facts(transport, reach: bool = True) -> dict:
    return transport.agent("server_facts", {"reach": reach})


def learn_facts(plan: IndexPlan, transport) -> None:
    """The server's facts, asked when none are cached (and cached): in the caller's thread, which
    owns the database connection `remember` writes to."""
    if plan.mode == "url" or (plan.facts is not None and (plan.mode != "auto" or "index" in plan.facts)):
        return
    plan.facts = ask_facts(transport, reach=plan.mode == "auto")
    if plan.remember is not None:
        plan.remember(plan.facts)


def prepare(plan: IndexPlan, transport, folder: Path, requirements: str | None,
            emit: Callable[[Progress], None]) -> tuple[list[FileEntry], dict]:
    """(wheel files to send like bundle files, fields for the deploy request)."""
    if plan.mode == "url":
        emit(Progress("resolve", f"packages from the private index {plan.url}"))
        return [], {"index": {"url": plan.url}, "index_password": plan.password}
    facts = plan.facts or {}
    if plan.mode == "auto" and (facts.get("index") or {}).get("reachable"):
        emit(Progress("resolve", f"{transport.name} reaches its package index ({facts['index'].get('url')}): "
                                 "it installs from there"))
        return [], {}
    if not requirements:
        return [], {"index": "offline"}
    if not facts.get("platforms"):
        raise OperationFailed(f"{transport.name} did not say its platform; nothing was uploaded", code="no_wheel")
    wheels = resolve(folder, requirements, facts, plan.cache or WheelCache(), transport.name, emit)
    files = [FileEntry(f"wheels/{w.name}", w.size, 0o644, w.sha256, w.path) for w in wheels]
    return files, {"index": "offline", "wheels": [{"name": w.name, "sha256": w.sha256, "size": w.size} for w in wheels]}


def wheel_news(wheels: list[FileEntry], missing: set[str]) -> str:
    """"3 wheel(s), 12.0 MB: 1 to send (4.0 MB), 2 already on the server"."""
    new = [w for w in wheels if w.sha256 in missing]
    return (f"{len(wheels)} wheel(s), {human_bytes(sum(w.size for w in wheels))}: {len(new)} to send "
            f"({human_bytes(sum(w.size for w in new))}), {len(wheels) - len(new)} already on the server")
