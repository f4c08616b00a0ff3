"""A change rolled over a group of servers (app/deploy/rolling.py) with the rules of a single change
kept: the reason rule is checked for every picked server before any starts, the group is one
audit operation (`deploy.group`, `rollback.group`, ...) whose outcome names each server's, and each
server's own events are written exactly as a single change writes them. Qt-free: the CLI uses it,
the console can. Each server works on its own Workspace (SQLite connections stay in their thread,
as app/ui/tasks.py does)."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app import errors
from app.deploy.progress import Progress
from app.deploy.rolling import (CANCELLED, FAILED, OK, UNCHANGED, Abandoned, Outcome, RollingSummary, describe,
                                run_rolling)
from app.workspace import REASONED_ACTIONS, ReasonRequired, Workspace

GROUP_ACTIONS = ("deploy", "rollback", "start", "stop", "promote")
SINGLE = {"promote": "deploy"}  # the single change each server of a group gets, where it has another name


@dataclass
class GroupPlan:
    action: str  # one of GROUP_ACTIONS
    names: list[str]  # the servers picked, in the order they roll
    selectors: list[str] = field(default_factory=list)  # what the operator typed, for the audit
    parallel: int = 10
    max_failures: int = 0
    canary_first: bool = False
    reason: str = ""
    model: str = ""  # rollback, start, stop: the model
    bundle: str = ""  # deploy: the bundle's path; promote: the release fetched from `source`
    source: str = ""  # promote: the server the release was copied from

    def facts(self) -> dict:
        return {"selectors": self.selectors, "servers": self.names, "parallel": self.parallel,
                "max_failures": self.max_failures, "canary_first": self.canary_first,
                **({"from": self.source} if self.source else {})}


# what one server's work gets: its own workspace, the server's name, and whether to stop
Work = Callable[[Workspace, str, Callable[[], bool]], Outcome]


def check_reasons(ws: Workspace, plan: GroupPlan) -> None:
    """Every picked production server needs the reason before any server starts: one message
    naming all of them, each refusal audited as a single change's is."""
    if SINGLE.get(plan.action, plan.action) not in REASONED_ACTIONS or plan.reason.strip():
        return
    missing = [name for name in plan.names if ws.reason_required(name)]
    if not missing:
        return
    which = f"{missing[0]} is a production server" if len(missing) == 1 else \
        f"{', '.join(missing)} are production servers"
    message = (f"{which}: give a reason for this change (--reason TEXT); Berth is set to require one "
               f"(settings: require_reason_production); nothing was changed on any of the {len(plan.names)} "
               "servers picked")
    for name in missing:
        ws.audit.record("permission.denied", "failed", server=name, detail=message)
    raise ReasonRequired(message, errors.REASON_REQUIRED)


def run_group(ws: Workspace, plan: GroupPlan, work: Work, should_stop: Callable[[], bool] = lambda: False,
              on_event: Callable[[str, str], None] | None = None,
              workspace_factory: Callable[[], Workspace] | None = None) -> RollingSummary:
    """Check the reasons, record the group's "started", roll `work` over the servers, record the
    group's outcome (ok: every server succeeded; cancelled: the operator stopped it; else failed)."""
    if plan.action not in GROUP_ACTIONS:
        raise ValueError(f"no group form of {plan.action!r}")
    check_reasons(ws, plan)
    what = bundle_facts(ws, plan.bundle) if plan.bundle else {"model": plan.model}
    factory = workspace_factory or (lambda: Workspace(ask_passphrase=ws.ask_passphrase,
                                                      anchor_later=getattr(ws, "anchor_later", False)))
    started = ws.audit.begin(f"{plan.action}.group", reason=plan.reason, detail=json.dumps(plan.facts()), **what)

    def action(name: str, stop: Callable[[], bool]) -> Outcome:
        with _own_workspace(factory) as own:
            return work(own, name, stop)

    try:
        summary = run_rolling(plan.names, action, plan.parallel, plan.max_failures, plan.canary_first,
                              should_stop, on_event, kind=plan.action)
    except Abandoned as e:  # a second Ctrl-C: the group's record names what each server did, and which ran on
        known = {o.server: describe(o, plan.action) for o in e.summary.outcomes}
        known.update({n: "skipped: not started" for n in plan.names if n not in known and n not in e.in_flight})
        ws.audit.finish(started, "failed", detail=json.dumps(dict(plan.facts(), stopped=e.summary.stopped or "stopped",
                                                                  abandoned=e.in_flight, outcomes=known)))
        raise
    except BaseException as e:  # anything else that ends the run: the group's record says so
        ws.audit.finish(started, "failed", detail=f"interrupted ({type(e).__name__})")
        raise
    outcome = "ok" if summary.ok else "cancelled" if summary.interrupted else "failed"
    outcomes = {o.server: describe(o, plan.action) for o in summary.outcomes}
    ws.audit.finish(started, outcome, detail=json.dumps(dict(plan.facts(), stopped=summary.stopped,
                                                             outcomes=outcomes)))
    return summary


def bundle_facts(ws: Workspace, path: str) -> dict:
    """The bundle's model, version and sha256, for the group's record; an invalid bundle is refused
    once, before any server starts (audited as a single deploy's is)."""
    from app.bundle import BundleError, open_bundle

    try:
        with open_bundle(path) as bundle:
            return {"model": bundle.manifest.name, "version": bundle.manifest.version, "sha256": bundle.sha256}
    except BundleError as e:
        ws.audit.record("bundle.check", "failed", detail=f"{path}: {e}")
        raise


class _own_workspace:
    """A Workspace for one server's thread, closed after it."""

    def __init__(self, factory: Callable[[], Workspace]):
        self.factory = factory

    def __enter__(self) -> Workspace:
        self.ws = self.factory()
        return self.ws

    def __exit__(self, *exc) -> None:
        if self.ws.anchor is not None:
            self.ws.anchor.close()
        self.ws.db.close()


def drive(gen: Iterator[Progress], on_progress: Callable[[Progress], None], should_stop: Callable[[], bool],
          cancel=None):
    """run_to_end with a stop: once `should_stop()`, `cancel` (the deploy's Event) is set, as the
    console's Cancel sets it: an upload stops and nothing changes; a server already switching
    finishes (the agent would undo a half-done change itself)."""
    while True:
        if cancel is not None and should_stop():
            cancel.set()
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        on_progress(p)


def deploy_work(bundle_path: Path, reason: str, keep: int, on_progress: Callable[[str, Progress], None],
                held: bool = True) -> Work:
    """One server's deploy, as `berth deploy PATH --server NAME` runs it; `held`: over the CLI's
    held connection (app/remote/held.py), upload included."""

    def work(ws: Workspace, name: str, should_stop: Callable[[], bool]) -> Outcome:
        cancel = threading.Event()
        with ws.connect(name, held=held) as t:
            job = ws.deploy(t, bundle_path, reason=reason, keep=keep, cancel=cancel)
            try:
                drive(job.run(), lambda p: on_progress(name, p), should_stop, cancel)
            except errors.BerthError as e:
                state = CANCELLED if errors.error_code(e) == errors.CANCELLED else FAILED
                return Outcome(name, state, detail=errors.one_line(e))
        r = job.result
        return Outcome(name, UNCHANGED if r.get("already") else OK, r.get("version") or "",
                       "" if r.get("already") else r.get("previous") or "")
    return work


def change_work(action: str, model: str, reason: str, params: dict,
                on_progress: Callable[[str, Progress], None], held: bool = True) -> Work:
    """One server's rollback, start or stop, as the single command runs it (one agent command:
    once asked, it finishes)."""

    def work(ws: Workspace, name: str, should_stop: Callable[[], bool]) -> Outcome:
        with ws.connect(name, held=held) as t:
            result = drive(ws.change(t, action, model, reason=reason, **params),
                           lambda p: on_progress(name, p), should_stop)
        return Outcome(name, OK, result.get("version") or "", result.get("previous") or "",
                       result.get("detail") or "")
    return work
