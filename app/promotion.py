"""`berth promote MODEL --from S --to T1,T2`: the exact release (same bundle sha256) that runs on S,
deployed to each target one after the other with the rules of a single deploy (the reason rule,
require_staging_first), stopping at the first failure: that server keeps the release it had, the
ones before it are done. One `promote` audit operation names the source, the sha256 and each
target's outcome; each target's deploy is audited as any deploy is. Qt-free (CLI; console later)."""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.deploy.errors import OperationFailed
from app.deploy.fetch import fetch_release
from app.deploy.progress import Progress
from app.errors import BerthError, one_line
from app.workspace import Workspace


@dataclass
class Promotion:
    model: str
    source: str
    version: str = ""
    sha256: str = ""
    done: list[str] = field(default_factory=list)
    failed: str = ""  # the server that stopped it
    error: str = ""
    not_started: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        return {"model": self.model, "from": self.source, "version": self.version, "sha256": self.sha256,
                "done": self.done, "failed": self.failed or None, "error": self.error or None,
                "not_started": self.not_started}


def promote(ws: Workspace, model: str, source: str, targets: list[str], version: str = "", reason: str = "",
            on_progress: Callable[[str, Progress], None] = lambda server, p: None) -> Promotion:
    """Copy the release from `source` (its current one, or `version`), check its content sha256,
    then deploy it to each of `targets` in order."""
    if source in targets:
        raise OperationFailed(f"--to names {source}, the server promoted from; promote to other servers")
    for name in [source, *targets]:
        ws.servers.get(name)  # an unknown name is refused before anything starts
    result = Promotion(model, source)
    with tempfile.TemporaryDirectory(prefix="berth-promote-") as tmp:
        folder = Path(tmp) / model
        info = fetch(ws, model, source, version, folder, on_progress)
        result.version, result.sha256 = info["version"], info["sha256"]
        started = ws.audit.begin("promote", model=model, version=result.version, sha256=result.sha256, reason=reason,
                                 detail=json.dumps({"from": source, "to": targets}))
        try:
            for i, name in enumerate(targets):
                try:
                    with ws.connect_to_change("deploy", name, reason) as t:
                        job = ws.deploy(t, folder, reason=reason)
                        yield_from(job.run(), lambda p, name=name: on_progress(name, p))
                except BerthError as e:
                    result.failed, result.error = name, one_line(e)
                    result.not_started = targets[i + 1:]
                    break
                result.done.append(name)
        except BaseException as e:  # Ctrl-C: the operation's record says how far it came
            ws.audit.finish(started, "failed", detail=json.dumps(dict(result.to_dict(), error=f"interrupted ({type(e).__name__})")))
            raise
        ws.audit.finish(started, "ok" if result.ok else "failed", detail=json.dumps(result.to_dict()))
    return result


def fetch(ws: Workspace, model: str, source: str, version: str, folder: Path,
          on_progress: Callable[[str, Progress], None]) -> dict:
    """The release from `source` (its current one, or `version`) into the new `folder`, its
    sha256 checked; returns its facts ("version", "sha256"). Also the group form's first step."""
    folder.mkdir()
    with ws.connect(source) as t:
        return yield_from(fetch_release(t, model, version or None, folder), lambda p: on_progress(source, p))


def yield_from(gen, each: Callable[[Progress], None]):
    """Run a Progress generator to its end, each value to `each`; its return value."""
    while True:
        try:
            each(next(gen))
        except StopIteration as stop:
            return stop.value


def where_ran(ws: Workspace, sha: str, model: str) -> list[dict]:
    """Where a bundle (by sha256) has run, past and now: the rows of `berth bundle where`
    (store.bundle_runs, this desktop's audit log), each with "now" asked of its server, plus any
    configured server that holds `model` with that sha256 though the log never saw it deployed.
    "now": "current", "kept" (a release there, not current), "removed" (no longer there), "no
    answer" (the server did not answer; "detail" says why) or "unknown server" (removed from Berth).
    Servers asked one after the other (a worker thread's work, never the window's)."""
    from app.deploy import queries
    from app.store.bundle_runs import bundle_runs

    rows = bundle_runs(ws.db, ws.servers, sha)
    full = rows[0]["sha256"] if rows else sha.strip().lower()
    by_server: dict[str, list[dict]] = {}
    for r in rows:
        by_server.setdefault(r["server"], []).append(dict(r, now="unknown server", detail=""))
    result: list[dict] = []
    for server in ws.servers.list():
        logged = by_server.pop(server.name, [])
        try:
            with ws.connect(server.name) as t:
                releases = queries.releases(t, logged[0]["model"] if logged else model)
        except (BerthError, OSError) as e:
            result += [dict(r, now="no answer", detail=one_line(e)) for r in logged]
            if not logged:
                result.append({"server": server.name, "environment": server.environment, "model": model,
                               "version": "", "sha256": full, "first": None, "last": None,
                               "now": "no answer", "detail": one_line(e)})
            continue
        held = [r for r in releases if (r.get("sha256") or "").startswith(full)]
        for r in logged:
            there = next((h for h in held if h.get("version") == r["version"]), None)
            r["now"] = "removed" if there is None else "current" if there.get("current") else "kept"
            result.append(r)
        seen = {r["version"] for r in logged}
        result += [{"server": server.name, "environment": server.environment, "model": model,
                    "version": h["version"], "sha256": h["sha256"], "first": h.get("deployed_at"),
                    "last": h.get("deployed_at"), "now": "current" if h.get("current") else "kept", "detail": ""}
                   for h in held if h["version"] not in seen]
    for logged in by_server.values():  # servers removed from Berth since
        result += logged
    return sorted(result, key=lambda r: r["first"] or "~")
