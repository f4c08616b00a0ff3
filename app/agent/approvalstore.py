"""Where four-eyes requests live: `<root>/.berth/approvals/<id>.json` (the change exactly as asked,
written once by the requester) and `<id>.decision.json` (written once, O_EXCL, by whoever decides:
a request approved twice runs once). On a shared root the folder and files are readable by the
root's group, so a second releaser can read and decide what a first one asked; nobody rewrites
another's file (the folder is sticky there: a member cannot replace another's request). Each
request's sha256 is journalled when it is made and checked before it runs."""
import hashlib
import json
import os
import re
import stat

from . import journal
from .layout import AgentError

FOLDER = "approvals"
ID_RE = re.compile(r"[0-9a-f]{12}")
MAX_BYTES = 4 * 1024 * 1024


def folder(root):
    """The folder, made as private or as shared as `.berth` is (its group bits and setgid)."""
    path = os.path.join(root.meta, FOLDER)
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        parent = os.stat(root.meta).st_mode
        try:
            shared = parent & 0o070
            os.chmod(path, 0o700 | (parent & (0o070 | stat.S_ISGID)) | (stat.S_ISVTX if shared else 0))
        except OSError:
            pass
    return path


def check_id(value):
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise AgentError("invalid approval id %r (12 hex digits, as `berth approvals` lists them)" % (value,), "usage")
    return value


def request_path(root, rid):
    return os.path.join(root.meta, FOLDER, check_id(rid) + ".json")


def decision_path(root, rid):
    return os.path.join(root.meta, FOLDER, check_id(rid) + ".decision.json")


def write_once(path, data):
    """Create `path` with `data`, failing with FileExistsError if it is there: the file is the fact."""
    shared = os.stat(os.path.dirname(path)).st_mode & 0o040
    raw = (json.dumps(data, sort_keys=True, indent=1) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o640 if shared else 0o600)
        os.write(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)
    return hashlib.sha256(raw).hexdigest()


def read(path):
    """(data, sha256 of its bytes), or (None, None) when there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, None
    except OSError as e:
        raise AgentError("cannot read %s: %s" % (path, e.strerror), "failed")
    try:
        raw = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return json.loads(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest()
    except ValueError:
        raise AgentError("%s is not valid JSON: remove it (the request cannot be approved)" % path, "failed")


def journalled_digest(root, rid):
    """The sha256 the journal recorded for request `rid` when it was made; None if it has none."""
    try:
        f = open(root.journal, "rb")
    except OSError:
        return None
    needle = rid.encode()
    with f:
        for line in f:
            if needle in line and b"approval.requested" in line:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("action") == "approval.requested" and event.get("request") == rid:
                    return event.get("digest")
    return None


def all_requests(root):
    """[(request, decision or None, the request file's sha256)] of every request kept here, newest first."""
    path = os.path.join(root.meta, FOLDER)
    try:
        names = os.listdir(path)
    except OSError:
        return []
    out = []
    for name in names:
        rid = name[:-len(".json")]
        if not (name.endswith(".json") and ID_RE.fullmatch(rid)):
            continue
        try:
            data, digest = read(os.path.join(path, name))
            decision, _ = read(decision_path(root, rid))
        except AgentError:
            continue  # one unreadable file does not hide the others
        if isinstance(data, dict):
            out.append((data, decision, digest))
    out.sort(key=lambda pair: pair[0].get("requested_ts") or 0, reverse=True)
    return out


def now_iso():
    return journal.utc_now()
