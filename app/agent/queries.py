"""Read-only questions about a server: no lock, no journal entry."""
import functools
import hashlib
import json
import os
import platform
import shutil
import socket
import sys

from . import blobs, crashloop, endpoint, experimentfiles, journal, lock, releasedetail, releases, supervise
from .fsutil import tail
from .layout import AgentError, check_name, check_version, inside_bundle


EXAMPLE_MAX_BYTES = 1 << 20


@functools.lru_cache(maxsize=None)
def agent_digest():
    """sha256 of the agent's own source (name, NUL, bytes per file, sorted): what the desktop's
    bootstrap checks on the server before each command (app/remote/agent_install.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            with open(os.path.join(here, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    return h.hexdigest()


def agent_version():
    """The agent's folder name on servers: Berth installs another when its own source differs."""
    return agent_digest()[:16]


def hello(ctx, req):
    root = ctx.root.ensure()
    blobs.prune_partials(root)
    missing = blobs.missing(root, req.get("hashes", []))
    usage = shutil.disk_usage(root.path)
    libc, libc_version = platform.libc_ver()
    return {
        "agent_version": agent_version(), "root": root.path, "blobs": root.blobs,
        "python": platform.python_version(), "python_executable": sys.executable,
        "platform": platform.platform(), "machine": platform.machine(),
        "libc": ("%s %s" % (libc, libc_version)).strip(), "hostname": socket.gethostname(),
        "disk_free": usage.free, "disk_total": usage.total, "cpus": os.cpu_count(),
        # what a bundle's profile is held against before a deploy (None where /proc is not Linux's)
        "mem_available": _meminfo("MemAvailable"), "mem_total": _meminfo("MemTotal"),
        # asked together with hello, so a deploy needs one agent start less (each costs ~0.35 s over SSH)
        "missing": missing,
        "partials": blobs.partials(root, missing),
        "journal_head": journal.head(root),
        "lock": lock.inspect(root.lock),
        "port_range": "%d-%d" % endpoint.port_range(root),
        # the bundle's model's versions here and their content: a version reused for other content
        # is refused before anything is uploaded
        "releases": _release_hashes(ctx.root, req.get("model")),
    }


def _meminfo(key):
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                name, _, rest = line.partition(b":")
                if name.decode() == key:
                    return int(rest.split()[0]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _release_hashes(root, name):
    if not name:
        return {}
    return dict((r["version"], r.get("sha256")) for r in releases.list_releases(root.model(check_name(name))))


def model_status(model):
    version = model.current_version()
    if version is None:
        return _unlinked_status(model)
    rec = supervise.record(model, version)
    if rec is None:
        state = "stopped"
    elif supervise.alive(rec):
        state = "running"
    else:
        state = "failed"
    info = releases.read_release(model, version) or {}
    watch = crashloop.summary(model, version)
    extra = {"watchdog": watch} if watch else {}
    if watch and watch.get("detail") and state != "running":
        state = "failed"  # a crash loop the watchdog gave up on, or one it is restarting
        extra["detail"] = watch["detail"]
    return dict(extra, **{"model": model.name, "version": version, "state": state,
            "port": _stable(model, rec) if rec and state == "running" else None,
            "release_port": rec.get("port") if rec and state == "running" else None,
            "stable_port": endpoint.stable_port(model),
            "pid": rec.get("pid") if rec and state == "running" else None,
            "started_at": rec.get("started_at") if rec else None, "sha256": info.get("sha256"),
            "experiment": experimentfiles.label(experimentfiles.active(model))})


def _unlinked_status(model):
    """A model whose `current` link is gone (removed by hand) but that has releases, maybe one still
    serving: status says so instead of hiding it, and how to repair it."""
    version = releases.unlinked_version(model)
    if version is None:
        return None
    rec = supervise.record(model, version)
    serving = supervise.alive(rec)
    rec = rec if serving else None
    what = "%s %s still serves" % (model.name, version) if serving else "no release is current"
    return {"model": model.name, "version": version, "state": "unlinked",
            "port": _stable(model, rec) if rec else None, "release_port": rec.get("port") if rec else None,
            "stable_port": endpoint.stable_port(model), "pid": rec.get("pid") if rec else None,
            "started_at": rec.get("started_at") if rec else None, "sha256": None,
            "detail": "the current link is missing (%s): `berth start %s` relinks %s, `berth rollback %s --to "
                      "VERSION` makes another release current" % (what, model.name, version, model.name)}


def _stable(model, rec):
    """The port clients use: the stable port the runner serves, or the release's own port for a
    runner started before stable ports (it has no stable port until its next start)."""
    return rec.get("stable_port") or rec.get("port")


def status(ctx, req):
    names = [check_name(req["model"])] if req.get("model") else ctx.root.model_names()
    out = [model_status(ctx.root.model(n)) for n in names]
    return {"models": [s for s in out if s], "journal_head": journal.head(ctx.root),
            "lock": lock.inspect(ctx.root.ensure().lock), "port_range": "%d-%d" % endpoint.port_range(ctx.root)}


def list_releases(ctx, req):
    model = ctx.root.model(check_name(req.get("model")))
    current = model.current_version()
    files_of = set(req.get("files_of") or ())
    out = []
    for r in releases.list_releases(model):
        row = {"version": r["version"], "current": r["version"] == current, "sha256": r.get("sha256"),
               "deployed_at": r.get("deployed_at"), "deployed_by": r.get("deployed_by", {}),
               "manifest": r.get("manifest", {}), "profile": r.get("profile")}
        if r.get("image"):  # a container release's image tag (containerimage.py)
            row["image"] = r["image"]
        if req.get("requirements"):
            row["requirements"] = releasedetail.requirements_text(model, r)
        if r["version"] in files_of:
            row["files"] = releasedetail.file_list(r)
        out.append(row)
    return {"model": model.name, "releases": out}


def logs(ctx, req):
    model = ctx.root.model(check_name(req.get("model")))
    version = req.get("version") or model.current_version()
    if not version:
        return {"lines": []}
    return {"version": version, "lines": tail(model.runner_log(check_version(version)), int(req.get("lines", 100)))}


def example(ctx, req):
    """The release's input example (manifest `input_example`), parsed; null when it has none."""
    model = ctx.root.model(check_name(req.get("model")))
    version = req.get("version") or model.current_version()
    if not version:
        raise AgentError("%s is not deployed on this server" % model.name, "nothing_deployed")
    check_version(version)
    info = releases.read_release(model, version)
    if info is None:
        raise AgentError("%s has no release %s on this server" % (model.name, version), "no_release")
    rel = (info.get("manifest") or {}).get("input_example")
    if not rel:
        return {"version": version, "example": None}
    bundle = os.path.join(model.release(version), "bundle")
    path = inside_bundle(bundle, rel)
    try:
        if os.path.getsize(path) > EXAMPLE_MAX_BYTES:
            raise AgentError("the input example %s is larger than 1 MiB" % rel, "too_large")
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {"version": version, "example": None}
    try:
        return {"version": version, "example": json.loads(data.decode("utf-8"))}
    except ValueError as e:
        raise AgentError("the input example %s is not valid JSON: %s" % (rel, e), "bad_example")


def read_journal(ctx, req):
    after = req.get("after")
    limit = req.get("limit", 5000)
    if (after is not None and not isinstance(after, str)) or not isinstance(limit, int) or limit < 1:
        raise AgentError("journal: 'after' must be an event id and 'limit' a positive number", "usage")
    return dict(journal.read(ctx.root, after, min(limit, 20000)), head=journal.head(ctx.root))
