"""A release's bundle read back by the desktop, so `berth promote` can deploy the exact content
(same sha256) that runs on one server to others (docs/experiments.md, "Promotion").

`release_files` names the release (the current one by default) and its files as release.json
recorded them; `release_read` returns one piece of one of those files, base64, at most CHUNK bytes.
Only the files release.json lists can be read, and never through a link that leaves the bundle."""
import base64
import os

from .layout import AgentError, check_version
from .releases import read_release

CHUNK = 1024 * 1024


def _release(ctx, req):
    model = ctx.root.model(req["model"])
    version = req.get("version") or model.current_version()
    if version is None:
        raise AgentError("%s has no current release on this server" % model.name, "not_found")
    info = read_release(model, check_version(version))
    if not info:
        have = sorted(v for v in os.listdir(model.releases) if not v.startswith(".")) if os.path.isdir(model.releases) else []
        raise AgentError("there is no release %s of %s on this server (releases: %s)"
                         % (version, model.name, ", ".join(have) or "none"), "not_found")
    return model, version, info


def release_files(ctx, req):
    model, version, info = _release(ctx, req)
    return {"model": model.name, "version": version, "sha256": info.get("sha256"),
            "current": version == model.current_version(),
            "files": [{k: f[k] for k in ("path", "sha256", "mode", "size")} for f in info.get("files") or []]}


def release_read(ctx, req):
    model, version, info = _release(ctx, req)
    path, offset = req["path"], req.get("offset", 0)
    if not any(f.get("path") == path for f in info.get("files") or []):
        raise AgentError("%s is not a file of %s %s" % (path, model.name, version), "usage")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise AgentError("offset must be a whole number of bytes", "usage")
    base = os.path.realpath(os.path.join(model.release(version), "bundle"))
    full = os.path.realpath(os.path.join(base, *path.split("/")))
    if os.path.commonpath([base, full]) != base:
        raise AgentError("%s leaves the bundle" % path, "usage")
    with open(full, "rb") as f:
        f.seek(offset)
        data = f.read(CHUNK)
    return {"data": base64.b64encode(data).decode("ascii"), "eof": len(data) < CHUNK}


COMMANDS = {"release_files": release_files, "release_read": release_read}
