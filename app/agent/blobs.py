"""Content-addressed blob store: Berth uploads only what the server lacks; every blob is re-hashed
before it becomes part of a release, so a damaged upload is never trusted."""
import hashlib
import os
import shutil

from .layout import SHA256_RE, AgentError


def blob_path(root, sha):
    if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
        raise AgentError("invalid blob hash %r" % (sha,), "usage")
    return os.path.join(root.blobs, sha)


def missing(root, hashes):
    return sorted({h for h in hashes if not os.path.isfile(blob_path(root, h))})


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def place(root, sha, dest, mode):
    """Put blob `sha` at `dest` (hard link where possible), after checking its hash."""
    src = blob_path(root, sha)
    if not os.path.isfile(src):
        raise AgentError("file content %s… was not uploaded; deploy again" % sha[:12], "missing_blob")
    if file_sha256(src) != sha:
        os.unlink(src)
        raise AgentError(
            "uploaded content %s… is damaged (hash mismatch) and was removed; deploy again" % sha[:12],
            "corrupt_blob",
        )
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if mode & 0o111:
        shutil.copyfile(src, dest)  # a link would share the mode bits with the blob
        os.chmod(dest, 0o755)
        return
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o644)
