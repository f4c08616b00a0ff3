"""`experiment_start`, `experiment_status`, `experiment_stop`: an experiment between two releases
of a model on this server (docs/experiments.md). Start runs B's runner on its private release port
(health-checked, never accepting on the stable port), starts the router with the stable port's
listening socket (taken from A's runner with `fd`) and, once the router accepts, tells A `unserve`.
Every refusal comes before anything changes."""
import importlib
import os
import re
import subprocess
import sys
import time

from . import endpoint, experimentend, experimentfiles as xf, journal, releases, supervise
from .fsutil import write_json_atomic, _unlink
from .layout import AgentError, check_name, check_version
from .lock import ServerLock
from .runnerenv import runner_environment

MODES = ("ab", "canary", "shadow")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}\Z")
ROUTER_READY_S = 10.0
DEFAULTS = {"step_requests": 100, "step_minutes": 1.0, "max_error_rate": 0.05, "max_p95_ms": None}


def settings(model, req):
    """The experiment `req` asks for, checked; one line naming the first problem otherwise."""
    data = xf.active(model)
    if data:
        raise AgentError("%s already has a %s experiment (%s against %s): stop it first with `berth experiment stop %s`"
                         % (model.name, data["mode"], data["b"], data["a"], model.name), "experiment_running")
    current = model.current_version()
    if current is None:
        raise AgentError("%s is not deployed on this server" % model.name, "nothing_deployed")
    a = check_version(req.get("a") or current or "")
    if not supervise.alive(supervise.record(model, a)):
        raise AgentError("%s %s is not running on this server: start it (`berth start %s`) before an experiment"
                         % (model.name, a, model.name), "not_running")
    if a != current:
        raise AgentError("--a %s: A must be the version that serves now (%s)" % (a, current), "usage")
    b = check_version(req.get("b") or "")
    if releases.read_release(model, b) is None:
        kept = ", ".join(r["version"] for r in releases.list_releases(model)) or "none"
        raise AgentError("%s has no release %s on this server (kept: %s); deploy it there first"
                         % (model.name, b, kept), "no_release")
    if b == a:
        raise AgentError("--b %s is A itself: name another release" % b, "usage")
    mode = req.get("mode")
    if mode not in MODES:
        raise AgentError("choose one of --weight, --canary or --shadow", "usage")
    out = {"model": model.name, "mode": mode, "a": a, "b": b, "state": "running", "sticky_header": None}
    if mode == "ab":
        out["weight"] = _number(req.get("weight"), "--weight", 0.0, 1.0)
        header = req.get("sticky_header")
        if header is not None:
            if not isinstance(header, str) or not _HEADER_NAME.match(header):  # ASCII: what HTTP clients send
                raise AgentError("--sticky-header %r is not a header name (ASCII letters, digits and '-', at most 64)"
                                 % (header,), "usage")
            out["sticky_header"] = header
    elif mode == "canary":
        out.update(canary_settings(req))
    else:
        out["weight"] = 0.0
    return out


def canary_settings(req):
    steps = req.get("steps", req.get("canary"))  # "canary": the console's name for the same list
    if not isinstance(steps, list) or not steps:
        raise AgentError("--canary takes percentages such as 5,25,50,100", "usage")
    steps = [_number(s, "--canary step", 0.0, 100.0) for s in steps]
    if any(s <= 0 for s in steps) or any(y <= x for x, y in zip(steps, steps[1:])):
        raise AgentError("--canary %s: the steps must be above 0 and increasing" % ",".join("%g" % s for s in steps),
                         "usage")
    if steps[-1] != 100:
        raise AgentError("--canary %s: the last step must be 100" % ",".join("%g" % s for s in steps), "usage")
    out = {"steps": steps, "step": 0, "weight": steps[0] / 100.0, "step_started": time.time()}
    got = dict(DEFAULTS, **{k: req[k] for k in DEFAULTS if req.get(k) is not None})
    out["step_requests"] = int(_number(got["step_requests"], "--step-requests", 1, 10 ** 9))
    out["step_minutes"] = _number(got["step_minutes"], "--step-minutes", 0.0, 7 * 24 * 60.0)
    out["max_error_rate"] = _number(got["max_error_rate"], "--max-error-rate", 0.0, 1.0)
    if got["max_p95_ms"]:  # 0 or none: no p95 limit
        out["max_p95_ms"] = _number(got["max_p95_ms"], "--max-p95-ms", 0.001, 3600000.0)
    return out


def _number(value, what, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise AgentError("%s %r must be a number from %g to %g" % (what, value, low, high), "usage")
    return value


def _locked(ctx, model, what):
    return ServerLock(ctx.root.ensure().lock, {"who": ctx.who(), "what": "%s %s" % (what, model.name)})


def _model(ctx, req):
    return ctx.root.ensure().model(check_name(req.get("model")))


def experiment_start(ctx, req):
    model = _model(ctx, req)
    with _locked(ctx, model, "experiment start"):
        data = settings(model, req)
        os.makedirs(xf.folder(model), exist_ok=True)
        info = releases.read_release(model, data["b"])
        ctx.emit("step", step="start", version=data["b"])
        b_port = _start_b(model, data["b"], info["manifest"])
        try:
            data.update(a_port=supervise.read_port(model, data["a"]), b_port=b_port, started=journal.utc_now(),
                        port=endpoint.stable_port(model), actor=ctx.actor)
            _unlink(xf.stats_file(model))
            write_json_atomic(xf.config_file(model), data)
            ctx.emit("step", step="router", port=data["port"])
            pid = start_router(model, data)
            _ask(model, data["a"], "unserve")
        except BaseException:
            experimentend.stop_router(model)
            endpoint.serve(supervise.record(model, data["a"]))
            supervise.stop(model, data["b"])
            _unlink(xf.config_file(model))
            raise
        ids = req.get("event_ids") if isinstance(req.get("event_ids"), dict) else {}
        journal.append(ctx.root, "experiment.started", "ok", ctx.actor, ids.get("outcome"), model=model.name,
                       version=data["b"], old=data["a"], detail=_describe(data), reason=req.get("reason"))
    return {"model": model.name, "mode": data["mode"], "a": data["a"], "b": data["b"], "router_pid": pid,
            "port": data["port"], "detail": _describe(data)}


def _start_b(model, version, manifest):
    """B's runner on its release port, health-checked; it holds the stable port's socket (so
    promote can hand it the port) but accepts nothing there until told `serve`."""
    from . import health, operations

    release_dir = model.release(version)
    releases.verify(model, version, releases.read_release(model, version) or {})
    supervise.stop(model, version)
    listener = endpoint.take(model, endpoint.stable_port(model), supervise.record(model, model.current_version()))
    try:
        rec = supervise.start(model, version, release_dir, manifest.get("env"), listener=listener)
    finally:
        listener.close()
    timeout = float(manifest.get("health_timeout_s") or 60)
    try:
        port = health.wait_ready(model, version, rec, timeout)
        health.check(model, version, port, operations._example(release_dir, manifest), timeout)
    except BaseException:
        supervise.stop(model, version)
        raise
    return port


def start_router(model, data):
    """The router process, in its own session (it outlives the agent), holding the stable port."""
    listener = endpoint.take(model, data["port"], supervise.record(model, data["a"]))
    ready = os.path.join(xf.folder(model), "router.ready")
    _unlink(ready)
    cmd = [sys.executable, "-S", "-m", supervise.PACKAGE + ".router", "--dir", xf.folder(model),  # -S: stdlib only
           "--listen-fd", str(listener.fileno())]
    # the runners' allow-list: the agent's environment (on `local` the operator's, SSH_AUTH_SOCK and tokens) stays out
    env = dict(runner_environment(), PYTHONPATH=supervise.PACKAGE_PARENT, PYTHONDONTWRITEBYTECODE="1",
               PYTHONUNBUFFERED="1")
    try:
        with open(xf.router_log(model), "ab") as log:
            proc = subprocess.Popen(cmd, cwd=model.path, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                    pass_fds=(listener.fileno(),))
    finally:
        listener.close()
    supervise._started[proc.pid] = proc  # reaped like a runner: no ResourceWarning for a live child
    write_json_atomic(xf.router_file(model), {"pid": proc.pid, "started_at": journal.utc_now()})
    end = time.monotonic() + ROUTER_READY_S
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > end:
            raise AgentError("the experiment router did not start (see %s)" % xf.router_log(model), "router_failed")
        time.sleep(0.02)
    return proc.pid


def _ask(model, version, command):
    rec = supervise.record(model, version)
    from . import handoff

    try:
        reply, _ = handoff.ask(rec["control"], command)
    except (OSError, KeyError, TypeError) as e:
        reply = str(e)
    if reply != "ok":
        raise AgentError("%s %s did not %s: %s" % (model.name, version, command, reply), "unhealthy")


def _describe(data):
    if data["mode"] == "shadow":
        return "shadow: %s answers, %s gets a copy" % (data["a"], data["b"])
    if data["mode"] == "canary":
        return "canary %s: %s at %s%%" % (data["b"], data["b"], ",".join("%g" % s for s in data["steps"]))
    sticky = ", sticky on %s" % data["sticky_header"] if data.get("sticky_header") else ""
    return "A/B: %s %g%%, %s %g%%%s" % (data["a"], (1 - data["weight"]) * 100, data["b"], data["weight"] * 100, sticky)


def experiment_status(ctx, req):
    model = _model(ctx, req)
    data = xf.config(model)
    if data is None:
        raise AgentError("%s has no experiment on this server; start one with `berth experiment start %s`"
                         % (model.name, model.name), "no_experiment")
    restarted = False
    if data["state"] in xf.ACTIVE and not xf.router_alive(model):
        restarted = _restart_router(ctx, model)
        data = xf.config(model)
    return report(model, data, restarted)


def _restart_router(ctx, model):
    """A router that died (killed, or the machine's OOM killer) while its runners live: started again
    from the files, its counts going on. Nothing restarts it before the next status."""
    with _locked(ctx, model, "experiment router restart"):
        data = xf.active(model)
        if data is None or xf.router_alive(model):
            return False
        start_router(model, data)
        return True


def report(model, data, restarted=False):
    from .fsutil import read_json
    from .routerstats import agreement_figures, figures

    saved = read_json(xf.stats_file(model)) or {}
    weight = float(data.get("weight", 0.0))
    a = figures(data["a"], 1.0 if data["mode"] == "shadow" else 1.0 - weight, saved.get("a"))
    b = figures(data["b"], weight, saved.get("b"))
    out = {"model": model.name, "mode": data["mode"], "state": data["state"], "started": data.get("started"),
           "ended": data.get("ended"), "detail": data.get("detail") or _describe(data), "a": a, "b": b,
           "agreement": agreement_figures(saved.get("agreement")) if data["mode"] == "shadow" else None,
           "router": {"alive": xf.router_alive(model), "restarted": restarted}, "verdict": None}
    extra = _add_labels(model, data, a, b)
    out["verdict"] = _verdict(_for_verdict(a, extra[0]), _for_verdict(b, extra[1]))
    if data["mode"] == "canary":
        out["canary"] = {k: data.get(k) for k in ("steps", "step", "step_requests", "step_minutes", "max_error_rate",
                                                  "max_p95_ms")}
    if data.get("sticky_header"):
        out["sticky_header"] = data["sticky_header"]
    return out


def _add_labels(model, data, a, b):
    """Each version's live accuracy (labels) or MAE (numbers) over the requests it answered since the
    experiment started (labelfigures: the request log joined with POST /feedback's labels by id)."""
    from .jobclock import parse
    from .labelfigures import label_figures

    try:
        started = parse(data.get("started"))
    except ValueError:
        started = None
    since = started.timestamp() if started else None
    got = label_figures(model, [a["version"], b["version"]], since=since, samples=True)
    extra = []
    for side in (a, b):
        figures = dict(got.get(side["version"]) or {"labelled": 0})
        samples = {k: figures.pop(k) for k in ("correct", "abs_errors") if k in figures}
        side.update(figures)
        extra.append(samples)
    return extra


def _for_verdict(side, samples):
    """The verdict's input: the router keeps a histogram, not each latency, so the p95 interval is
    taken over the bucket bounds, each repeated as often as it was hit (at most 20,000 in all, in
    proportion): an order statistic of that sample is the bucket the true one falls in."""
    counts, bounds = side.get("latency_counts") or [], side.get("latency_bounds_s") or []
    total = sum(counts)
    scale = min(1.0, 20000.0 / total) if total else 0.0
    sample = []
    for count, bound in zip(counts, list(bounds) + [None]):
        if bound is not None and count:
            sample += [bound * 1000.0] * int(round(count * scale))
    return dict(side, latencies_ms=sample, **samples)


def _verdict(a, b):
    """verdict.verdict(a, b) when app/agent/verdict.py is there (its own issue), else a placeholder."""
    try:
        module = importlib.import_module(__package__ + ".verdict")
    except ModuleNotFoundError as e:
        if e.name != __package__ + ".verdict":
            raise
        return {"text": "not computed yet"}
    return module.verdict(a, b)


def experiment_stop(ctx, req):
    model = _model(ctx, req)
    with _locked(ctx, model, "experiment stop"):
        data = xf.active(model)
        if data is None:
            raise AgentError("%s has no experiment running on this server" % model.name, "no_experiment")
        promote = bool(req.get("promote"))
        action = "experiment.promoted" if promote else "experiment.stopped"
        detail = ("%s promoted: it is current, %s stopped" % (data["b"], data["a"]) if promote
                  else "stopped: %s keeps serving, %s stopped" % (data["a"], data["b"]))
        ids = req.get("event_ids") if isinstance(req.get("event_ids"), dict) else {}
        data = experimentend.finish(ctx.root, model, data, "b" if promote else "a", action, ctx.actor, detail,
                                    ids.get("outcome"))
    return dict(report(model, data), detail=detail)


COMMANDS = {"experiment_start": experiment_start, "experiment_status": experiment_status,
            "experiment_stop": experiment_stop}
