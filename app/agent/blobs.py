"""Content-addressed blob store. Berth uploads only what the server lacks, each blob to
`.partial-<sha>` (resumed there after a cut); the agent hashes a partial and only then gives it its
final name (`commit`). A blob under its final name was verified on the server, and is kept
read-only (mode 0444) as the mark of it: releases are linked from it and are immutable anyway."""
import hashlib
import os
import shutil
import time

from .layout import SHA256_RE, AgentError

VERIFIED_MODE = 0o400  # read-only, and private: also the mark of a hashed blob
SHARED_MODE = 0o440  # the same mark on a shared root, for a change another releaser approves (approvals.py)
PARTIAL_MAX_AGE_S = 7 * 86400


def blob_path(root, sha):
    if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
        raise AgentError("invalid blob hash %r" % (sha,), "usage")
    return os.path.join(root.blobs, sha)


def partial_path(root, sha):
    return os.path.join(root.blobs, ".partial-" + os.path.basename(blob_path(root, sha)))


def missing(root, hashes):
    return sorted({h for h in hashes if not os.path.isfile(blob_path(root, h))})


def partials(root, hashes):
    """What a cut upload left of the `hashes` the server lacks: size and the hash of those bytes, so
    Berth resumes only when they are the start of its own file (never trusted blindly)."""
    out = {}
    for sha in hashes:
        path = partial_path(root, sha)
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        if size:
            out[sha] = {"size": size, "sha256": file_sha256(path)}
    return out


def prune_partials(root, now=None):
    """Partials nobody resumed for a week are removed (called on hello; cheap: one listdir)."""
    now = now or time.time()
    try:
        names = os.listdir(root.blobs)
    except OSError:
        return
    for name in names:
        if name.startswith(".partial-") or name.startswith(".tmp-"):
            path = os.path.join(root.blobs, name)
            try:
                if now - os.path.getmtime(path) > PARTIAL_MAX_AGE_S:
                    os.unlink(path)
            except OSError:
                pass


def commit(root, hashes):
    """Hash each uploaded partial; rename the good ones to their final name, remove the bad ones.
    Returns the hashes that failed (damaged or never arrived)."""
    bad = []
    for sha in hashes:
        final = blob_path(root, sha)
        if os.path.isfile(final):
            continue
        partial = partial_path(root, sha)
        if not os.path.isfile(partial) or file_sha256(partial) != sha:
            _unlink(partial)
            bad.append(sha)
            continue
        os.chmod(partial, VERIFIED_MODE)
        os.rename(partial, final)
    return bad


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def place(root, sha, dest, mode):
    """Put blob `sha` at `dest` (hard link where possible). A blob that does not carry the verified
    mark (stored by an older Berth) is hashed first."""
    src = blob_path(root, sha)
    try:
        st = os.stat(src)
    except OSError:
        raise AgentError("file content %s… was not uploaded; deploy again" % sha[:12], "missing_blob")
    if st.st_mode & 0o777 not in (VERIFIED_MODE, SHARED_MODE):
        if file_sha256(src) != sha:
            os.unlink(src)
            raise AgentError(
                "uploaded content %s… is damaged (hash mismatch) and was removed; deploy again" % sha[:12],
                "corrupt_blob",
            )
        os.chmod(src, VERIFIED_MODE)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if mode & 0o111:
        shutil.copyfile(src, dest)  # a link would share the mode bits with the blob
        os.chmod(dest, 0o700)
        return
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
        os.chmod(dest, VERIFIED_MODE)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
