"""The changes the agent makes, each under the server lock and written to the journal:
deploy, rollback, start, stop. Any failure before the switch leaves the previous release serving."""
import json
import os
import signal
import threading
import time

from . import blobs, crashloop, endpoint, envs, experimentfiles, journal, jobstore, releases, supervise, wheelhouse
from .fsutil import symlink_atomic
from .layout import AgentError, check_name, check_version, inside_bundle
from .lock import ServerLock, break_lock
from .protocol import Cancelled

SETTLE_S = 0.3  # after the switch, give a runner that dies right after its health check time to show it


class Context:
    def __init__(self, root, actor, emit):
        self.root = root
        self.actor = actor or {}
        self.emit = emit
        self.event_ids = {}  # the desktop's names for this change's journal events
        self._saved_handlers = None

    def point_of_no_return(self):
        """From the switch of `current` on, the change completes (or rolls back by itself) whatever
        happens to Berth: a cut session's SIGHUP/SIGTERM and a closed output no longer stop it
        halfway, so the server never keeps a `current` without its runner or its release."""
        if self._saved_handlers is not None:
            return
        self._saved_handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._saved_handlers[sig] = signal.signal(sig, signal.SIG_IGN)
        emit = self.emit

        def quiet(kind, **fields):
            try:
                emit(kind, **fields)
            except Cancelled:  # Berth went away: its journal entry will tell it how this ended
                pass
        self.emit = quiet

    def settle(self):
        """Back to normal signal handling once the change is journalled."""
        for sig, handler in (self._saved_handlers or {}).items():
            signal.signal(sig, handler)
        self._saved_handlers = None

    def who(self):
        a = self.actor
        return "%s@%s" % (a.get("user", "?"), a.get("host", "?"))


def audited(action):
    """Run `fn` under the server lock; journal 'started', then 'ok' or 'failed' with the reason.
    `event_ids` from the desktop name the two journal events as its own audit log names them, so
    importing the journal later does not show them twice."""
    def wrap(fn):
        def run(ctx, req):
            name = check_name(req.get("model"))
            root = ctx.root.ensure()
            model = root.model(name).ensure()
            what = "%s %s %s" % (action, name, req.get("version") or req.get("to") or "")
            ids = req.get("event_ids") if isinstance(req.get("event_ids"), dict) else {}
            with ServerLock(root.lock, {"who": ctx.who(), "what": what.strip()}):
                current = model.current_version()
                experimentfiles.refuse_during(model, action)
                if current is not None:  # without `current` (removed by hand) start / rollback decide
                    supervise.stop_strays(model, {current} | experimentfiles.versions(model))
                base = {"model": name, "version": req.get("version") or req.get("to"), "sha256": req.get("sha256"),
                        "old": current, "reason": req.get("reason"), "approval": req.get("approval")}
                started = _journal(root, action, "started", ctx, ids.get("started"),
                                   desktop_head=_desktop_head(req), **base)
                base["ref"] = started["id"] if started else None
                ctx.event_ids = ids
                try:
                    result = fn(ctx, model, req)
                except BaseException as e:
                    _journal(root, action, "failed", ctx, ids.get("outcome"), detail=str(e) or type(e).__name__,
                             **base)
                    ctx.settle()
                    raise
                crashloop.reset(model)  # the operator decided: the watchdog's crash history starts afresh
                base.update({k: result.get(k) for k in ("version", "sha256") if result.get(k)})
                if action in ("deploy", "rollback"):
                    base.update(old=result.get("previous"), new=result.get("version"))
                if not _journal(root, action, "ok", ctx, ids.get("outcome"), detail=result.get("detail", ""), **base):
                    result = dict(result, detail="%s; not in the server's journal: its disk is full"
                                  % result.get("detail", action), journalled=False)
                endpoint.wake_watchdog(root.meta)
                ctx.settle()
                return result
        run.__name__ = fn.__name__
        return run
    return wrap


def _desktop_head(req):
    """The desktop's audit chain head when it asked for this change (its id, seq, hash): recorded in
    the journal so the desktop's log can later be checked against it (app/audit/sync.py)."""
    head = req.get("desktop_head")
    if not isinstance(head, dict):
        return None
    try:
        return {"desktop": str(head.get("desktop") or "")[:64], "seq": int(head.get("seq") or 0),
                "hash": str(head.get("hash") or "")[:64]}
    except (TypeError, ValueError):
        return None


UNSTOPPABLE = ("stop",)  # frees resources: must work on a full disk, journalled when space allows


def _journal(root, action, outcome, ctx, event_id, **fields):
    """journal.append; for a stop, a full disk does not stop the stop (None: not journalled)."""
    try:
        return journal.append(root, action, outcome, ctx.actor, event_id, **fields)
    except AgentError as e:
        if e.code != "no_space" or action not in UNSTOPPABLE:
            raise
        ctx.emit("log", step=action, line="not journalled: %s" % e)
        return None


def deploy(ctx, req):
    """Commit the blobs Berth just uploaded (hashed here first) before anything is journalled: a
    damaged one is reported by name so Berth can send it again and retry this same deploy."""
    bad = blobs.commit(ctx.root.ensure(), req.get("commit") or [])
    if bad:
        raise AgentError("%d uploaded file(s) arrived damaged or incomplete (hash mismatch) and were removed"
                         % len(bad), "corrupt_blob", bad=bad)
    return _deploy(ctx, req)


@audited("deploy")
def _deploy(ctx, model, req):
    version = check_version(req.get("version"))
    sha, manifest, files = req["sha256"], req["manifest"], req["files"]
    releases.remove_incomplete(model)
    previous = model.current_version()
    existing = releases.read_release(model, version)
    created = False
    if existing:
        if existing.get("sha256") != sha:
            raise AgentError(
                "version %s of %s is already on this server with different content (%s…); give the new "
                "bundle a new version" % (version, model.name, str(existing.get("sha256"))[:12]), "version_conflict")
        if previous == version and supervise.alive(supervise.record(model, version)):
            return {"version": version, "previous": previous, "sha256": sha, "already": True,
                    "detail": "already current and running", "port": endpoint.stable_port(model),
                    "release_port": supervise.read_port(model, version)}
    else:
        ctx.emit("step", step="assemble", total=len(files))
        release_dir = releases.assemble(ctx.root, model, version, files, ctx.emit)
        created = True
        try:
            record = {"version": version, "sha256": sha, "manifest": manifest, "files": files,
                      "deployed_at": journal.utc_now(), "seq": time.time(), "deployed_by": ctx.actor,
                      "profile": _profile(req.get("profile"))}
            _environment(ctx, model, version, release_dir, record, wheelhouse.source_of(req))
            releases.mark_complete(model, version, record)
        except BaseException:
            releases.remove(model, version)
            raise
    try:
        port = _switch_to(ctx, model, version, previous, manifest, manifest.get("port"))
    except BaseException:
        if created and model.current_version() != version:  # never the release `current` names
            releases.remove(model, version)
        raise
    ctx.emit("step", step="prune")
    protect = {version, previous} | jobstore.pinned_versions(ctx.root, model.name)
    removed = releases.prune(model, int(req.get("keep", 5)), protect=protect)
    if removed and manifest.get("runtime") == "container":  # a pruned release's image goes with it
        from . import containerimage

        for gone in removed:
            containerimage.remove(ctx.root, model, gone)
    envs.prune(ctx.root, [ctx.root.model(n) for n in ctx.root.model_names()])
    return {"version": version, "previous": previous, "sha256": sha, "port": endpoint.stable_port(model),
            "release_port": port, "pruned": removed,
            "detail": "%s -> %s" % (previous or "nothing", version)}


def _environment(ctx, model, version, release_dir, record, wheels):
    """What the release runs in: its image (runtime "container", built on this server) or its venv."""
    manifest = record["manifest"]
    if manifest.get("runtime") == "container":
        from . import containerimage  # only container releases need it

        ctx.emit("step", step="image")
        record["image"] = containerimage.build(ctx.root, model, version, record, ctx.actor, ctx.emit, wheels)
        ctx.emit("step", step="image", tag=record["image"])
        return
    ctx.emit("step", step="venv")
    _env, reused = envs.ensure(ctx.root, release_dir, manifest, record["files"], ctx.emit, lambda: False, wheels)
    ctx.emit("step", step="venv", reused=reused)


@audited("rollback")
def rollback(ctx, model, req):
    current = model.current_version()
    if current is None and not req.get("to"):
        if releases.list_releases(model):
            raise AgentError("%s has no current release (its link was removed): name the release to make current "
                             "with --to VERSION (kept: %s)" % (model.name, _kept(model)), "usage")
        raise AgentError("%s has no current release to roll back from" % model.name, "nothing_deployed")
    target = req.get("to") or _release_before(model, current)
    info = releases.read_release(model, check_version(target))
    if info is None:
        raise AgentError("%s has no release %s on this server (kept: %s)" % (model.name, target, _kept(model)),
                         "no_release")
    if target == current:
        raise AgentError("%s %s is already current" % (model.name, target), "already_current")
    port = _switch_to(ctx, model, target, current, info["manifest"])
    supervise.stop_strays(model, {target})  # runners a removed `current` left behind
    return {"version": target, "previous": current, "sha256": info.get("sha256"), "port": endpoint.stable_port(model),
            "release_port": port,
            "detail": "%s -> %s" % (current, target)}


@audited("start")
def start(ctx, model, req):
    version = model.current_version() or _relink_current(ctx, model)
    rec = supervise.record(model, version)
    if supervise.alive(rec):
        return {"version": version, "port": rec.get("stable_port") or rec.get("port"),
                "release_port": rec.get("port"), "detail": "already running"}
    info = releases.read_release(model, version)
    port = _start_healthy(ctx, model, version, info["manifest"])
    return {"version": version, "port": endpoint.stable_port(model), "release_port": port, "sha256": info.get("sha256")}


@audited("stop")
def stop(ctx, model, req):
    version = _current_or_fail(model)
    was = supervise.alive(supervise.record(model, version))
    supervise.stop(model, version)
    endpoint.release_kept(model)  # the watchdog's copy of the port goes too: it refuses from now on
    return {"version": version, "detail": "stopped" if was else "was not running"}


def unlock(ctx, req):
    """Break the server lock held by a stuck agent: only the process the operator saw and confirmed
    (`pid`), only a Berth agent, and journalled."""
    root = ctx.root.ensure()
    pid = req.get("pid")
    if not isinstance(pid, int):
        raise AgentError("unlock needs the pid of the holder you confirmed", "usage")
    holder = break_lock(root.lock, pid)
    if holder is None:
        return {"broken": False, "detail": "the server was not locked (nothing to do)"}
    detail = "ended pid %s: %s running '%s' since %s" % (pid, holder.get("who", "?"), holder.get("what", "?"),
                                                       holder.get("since", "?"))
    with ServerLock(root.lock, {"who": ctx.who(), "what": "lock break"}):
        journal.append(root, "lock.break", "ok", ctx.actor, (req.get("event_ids") or {}).get("outcome"),
                       detail=detail, reason=req.get("reason"))
    return {"broken": True, "holder": holder, "detail": detail}


def _kept(model):
    return ", ".join(r["version"] for r in releases.list_releases(model)) or "none"


def _relink_current(ctx, model):
    """`current` was removed by hand: point it back at the release whose runner still serves (the one
    status reports), else at the newest release; nothing deployed stays an error."""
    version = releases.unlinked_version(model)
    if version is None:
        return _current_or_fail(model)
    symlink_atomic(os.path.join("releases", version), model.current)
    supervise.stop_strays(model, {version})
    ctx.emit("log", step="start", line="current was missing: relinked to %s" % version)
    return version


def _current_or_fail(model):
    version = model.current_version()
    if version is None or releases.read_release(model, version) is None:
        raise AgentError("%s has no current release on this server; deploy it first" % model.name, "nothing_deployed")
    return version


def _release_before(model, current):
    versions = [r["version"] for r in releases.list_releases(model)]
    if current not in versions or versions.index(current) == 0:
        raise AgentError("%s has no release before %s to roll back to" % (model.name, current), "no_release")
    return versions[versions.index(current) - 1]


def _start_healthy(ctx, model, version, manifest, previous=None, wanted_port=None, serve=True):
    """Start `version` holding the stable port's listening socket (taken from `previous`'s runner,
    else bound now), health-check it on its own release port, then let it accept on the stable port
    beside `previous` (not with serve=False: an experiment's router holds the port). Returns the
    release port."""
    from . import health  # http.client costs ~50 ms to import; only changes that start a runner need it

    release_dir = model.release(version)
    releases.verify(model, version, releases.read_release(model, version) or {})
    supervise.stop(model, version)  # a stale runner of this very version
    saved = endpoint.saved(model)
    stable = endpoint.ensure(ctx.root, model, wanted_port)
    try:
        listener = endpoint.take(model, stable, _holder(model, previous, version))
    except BaseException:
        endpoint.restore(model, saved)  # a bundle's new port that cannot be had: the old one stays
        raise
    ctx.emit("step", step="start", version=version, port=stable)
    try:
        rec = supervise.start(model, version, release_dir, manifest.get("env"), listener=listener)
    finally:
        listener.close()  # the runner has its own copy now
    timeout = float(manifest.get("health_timeout_s") or 60)
    try:
        port = health.wait_ready(model, version, rec, timeout)
        ctx.emit("step", step="health", version=version, port=port)
        health.check(model, version, port, _example(release_dir, manifest), timeout)
        if serve:
            endpoint.serve(rec)
    except BaseException:
        supervise.stop(model, version)
        endpoint.restore(model, saved)
        raise
    return port


def _holder(model, previous, version):
    """The runner record to take the stable port's socket from: `previous`'s, else any other live
    runner of the model (one a removed `current` left serving)."""
    for v in [previous] + supervise.running_versions(model):
        if v and v != version:
            rec = supervise.record(model, v)
            if supervise.alive(rec):
                return rec
    return None


def _switch_to(ctx, model, version, previous, manifest, wanted_port=None):
    """Start `version` beside `previous`, switch `current`, then stop `previous`; if the new runner
    fails right after the switch, `previous` becomes current again by itself."""
    from . import health

    port = _start_healthy(ctx, model, version, manifest, previous, wanted_port)
    ctx.emit("step", step="switch", version=version, previous=previous)
    ctx.point_of_no_return()
    symlink_atomic(os.path.join("releases", version), model.current)
    time.sleep(SETTLE_S)
    rec = supervise.record(model, version)
    try:
        if not supervise.alive(rec):
            raise AgentError("%s %s exited right after it was switched in" % (model.name, version), "unhealthy")
        health.check(model, version, port, None, timeout=5)
    except AgentError as e:
        _switch_back(ctx, model, version, previous, str(e))
        raise AgentError("%s; %s" % (e, "%s is current again" % previous if previous else "nothing is current"),
                         "rolled_back", log=e.extra.get("log"), previous=previous)
    if previous and previous != version:
        ctx.emit("step", step="stop_previous", version=previous)
        supervise.stop(model, previous)
    return port


def _switch_back(ctx, model, failed, previous, reason):
    if previous:
        symlink_atomic(os.path.join("releases", previous), model.current)
    else:
        try:
            os.unlink(model.current)
        except OSError:
            pass
    supervise.stop(model, failed)
    journal.append(ctx.root, "rollback.auto", "ok", ctx.actor, ctx.event_ids.get("rollback_auto"), model=model.name, version=previous or "",
                   old=failed, new=previous or "", detail="%s failed after the switch: %s" % (failed, reason))
    ctx.emit("step", step="rollback.auto", version=previous, failed=failed)


def _profile(value):
    """The bundle's resource profile the desktop measured (`berth bundle profile`), kept with the
    release when it is a small JSON object; anything else is dropped, not refused."""
    if isinstance(value, dict) and len(json.dumps(value)) <= 16384:
        return value
    return None


def _example(release_dir, manifest):
    name = manifest.get("input_example")
    if not name:
        return None
    with open(inside_bundle(os.path.join(release_dir, "bundle"), name)) as f:
        return json.load(f)
