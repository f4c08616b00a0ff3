"""Release folders: assembled from blobs into `.incoming-<id>`, renamed into place when verified,
marked complete by `release.json`, pruned to the newest N."""
import os
import shutil
import uuid

from . import blobs, supervise
from .fsutil import read_json, write_json_atomic
from .layout import AgentError, check_version

RELEASE_FILE = "release.json"


def read_release(model, version):
    data = read_json(os.path.join(model.release(version), RELEASE_FILE))
    return data if isinstance(data, dict) else None


def list_releases(model):
    """Complete releases, oldest deploy first."""
    out = []
    if not os.path.isdir(model.releases):
        return out
    for v in os.listdir(model.releases):
        if v.startswith("."):
            continue
        try:
            info = read_release(model, v)
        except AgentError:
            continue
        if info:
            out.append(info)
    out.sort(key=lambda r: (r.get("deployed_at", ""), r.get("seq", 0)))
    return out


def remove_incomplete(model):
    """Leftovers of an interrupted deploy: incoming folders and releases with no release.json."""
    if not os.path.isdir(model.releases):
        return
    for v in os.listdir(model.releases):
        path = os.path.join(model.releases, v)
        if v.startswith(".incoming-") or not os.path.exists(os.path.join(path, RELEASE_FILE)):
            if v != model.current_version():
                shutil.rmtree(path, ignore_errors=True)


def assemble(root, model, version, files, emit):
    """Build the release folder from verified blobs; returns its final path."""
    check_version(version)
    incoming = os.path.join(model.releases, ".incoming-" + uuid.uuid4().hex[:12])
    bundle = os.path.join(incoming, "bundle")
    os.makedirs(bundle)
    try:
        for i, f in enumerate(files):
            dest = _safe_join(bundle, f["path"])
            blobs.place(root, f["sha256"], dest, int(f.get("mode", 0o644)))
            if i % 50 == 0:
                emit("step", step="assemble", done=i + 1, total=len(files))
        final = model.release(version)
        os.rename(incoming, final)
        return final
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise


def verify(model, version, info):
    """Every file of the release is what its sha256 says, before it starts: blobs are hard-linked
    into releases, so a changed blob used to change an old release's model.py in place while
    `releases` still showed the original sha256."""
    bundle = os.path.join(model.release(version), "bundle")
    for f in info.get("files") or []:
        path = _safe_join(bundle, f["path"])
        try:
            same = blobs.file_sha256(path) == f["sha256"]
        except OSError:
            same = False
        if not same:
            raise AgentError("%s %s was changed on this server since it was deployed (%s is not the file that was "
                             "deployed): deploy it again under a new version" % (model.name, version, f["path"]),
                             "release_modified")


def mark_complete(model, version, info):
    write_json_atomic(os.path.join(model.release(version), RELEASE_FILE), info)


def remove(model, version):
    shutil.rmtree(model.release(version), ignore_errors=True)


def prune(model, keep, protect=()):
    """Keep the newest `keep` releases; never remove a protected (current / running) one."""
    releases = list_releases(model)
    removed = []
    excess = len(releases) - keep
    for r in releases:
        if excess <= 0:
            break
        if r["version"] in protect:
            continue
        remove(model, r["version"])
        removed.append(r["version"])
        excess -= 1
    return removed


def _safe_join(base, rel):
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or "\0" in rel:
        raise AgentError("invalid file path %r in bundle" % (rel,), "usage")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise AgentError("invalid file path %r in bundle" % (rel,), "usage")
    return os.path.join(base, *parts)


def unlinked_version(model):
    """For a model whose `current` link is gone: the newest release whose runner still serves, else
    the newest release; None when none is kept. What status shows and what `start` relinks."""
    running = set(supervise.running_versions(model))
    kept = [r["version"] for r in list_releases(model)]
    serving = [v for v in kept if v in running]
    return (serving or kept or [None])[-1]
