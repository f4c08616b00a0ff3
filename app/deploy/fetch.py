"""A release's bundle copied from a server into a local folder, every file checked against its
sha256 and the whole against the release's content sha256: what `berth promote` deploys elsewhere is
then byte for byte what ran there."""
from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from app.bundle.content import content_sha256, list_files
from app.bundle.paths import relpath_problem
from app.remote.transport import Transport

from .errors import OperationFailed
from .progress import Progress


def fetch_release(transport: Transport, model: str, version: str | None, dest: Path) -> Iterator[Progress]:
    """Yields progress; returns the agent's release_files answer ({"version", "sha256", "files", ...})."""
    info = transport.agent("release_files", {"model": model, "version": version})
    files, total, done = info["files"], sum(f["size"] for f in info["files"]), 0
    yield Progress("fetch", f"copying {model} {info['version']} from {transport.name}", 0, total)
    for f in files:
        if relpath_problem(f["path"]) or f["mode"] not in (0o644, 0o755):  # a server names files, not places
            raise OperationFailed(f"{transport.name} lists {f['path']!r} in {model} {info['version']}, which no bundle "
                                  f"can hold; nothing was promoted")
        target = dest.joinpath(*f["path"].split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, offset = hashlib.sha256(), 0
        with open(target, "wb") as out:
            while offset < f["size"]:
                piece = base64.b64decode(transport.agent("release_read", {"model": model, "version": info["version"],
                                                                          "path": f["path"], "offset": offset})["data"])
                if not piece:
                    break
                out.write(piece)
                digest.update(piece)
                offset += len(piece)
                done += len(piece)
                yield Progress("fetch", f["path"], done, total)
        if offset != f["size"] or digest.hexdigest() != f["sha256"]:
            raise OperationFailed(f"{f['path']} of {model} {info['version']} on {transport.name} is not what its "
                                  f"release recorded (changed on the server?); nothing was promoted")
        os.chmod(target, f["mode"])
    got = content_sha256(list_files(dest))
    if got != info["sha256"]:
        raise OperationFailed(f"the copy of {model} {info['version']} from {transport.name} has sha256 {got[:12]}…, "
                              f"its release records {str(info['sha256'])[:12]}…; nothing was promoted")
    return info
