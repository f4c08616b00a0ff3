"""Small file-system helpers that make writes atomic, so a crash never leaves half a file."""
import json
import os
import tempfile

from .layout import SHARED_UMASK, WRITERS_UMASK

SHARED_UMASKS = (SHARED_UMASK, WRITERS_UMASK)  # what the agent sets in a shared root (layout.Root.umask)


def write_json_atomic(path, data, private=False):
    """Replace `path` in one rename; 0600, or in a shared root what its umask allows (its members
    read, its writers replace), unless `private` (a secret)."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        mask = None if private else current_umask()
        if mask in SHARED_UMASKS:  # mkstemp makes 0600: a shared root's members read (and its writers
            os.fchmod(fd, 0o666 & ~mask)  # replace) these files too; any other umask (a desktop's) keeps 0600
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def current_umask():
    """The process's umask without changing it (os.umask sets it, which threads would race), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def symlink_atomic(target, link):
    """Point `link` at `target` in one rename: readers see the old or the new, never nothing."""
    tmp = "%s.tmp-%d" % (link, os.getpid())
    _unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def tail(path, lines=20, max_bytes=65536):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
