"""The server's own append-only history (journal.jsonl), written under the server lock.

It is the shared truth for the server: every desktop imports it (deduplicated by event id). Each
line carries `seq`, the hash of the line before (`prev`) and its own `hash` (sha256 of the line's
canonical JSON without `hash`), so an edited, removed or reordered line breaks the chain."""
import contextlib
import errno
import hashlib
import json
import os
import re
import uuid
from datetime import datetime, timezone

from .layout import AgentError

GENESIS = "0" * 64
ID_RE = re.compile(r"[0-9a-f]{8,64}")
TAIL = 65536


def utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def line_hash(event):
    body = {k: v for k, v in event.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def append(root, action, outcome, actor=None, event_id=None, **fields):
    """Call with the server lock held: the chain's head is read from the file's last line."""
    seq, prev = _head(root.journal)
    event = {"id": event_id if event_id and ID_RE.fullmatch(event_id) else uuid.uuid4().hex, "ts": utc_now(),
             "action": action, "outcome": outcome, "actor": actor or {}, "seq": seq + 1, "prev": prev}
    event.update({k: v for k, v in fields.items() if v not in (None, "")})
    event["hash"] = line_hash(event)
    write_line(root.journal, (json.dumps(event, sort_keys=True) + "\n").encode())
    return event


def write_line(path, data):
    """Append one whole line or nothing: a short write (a full disk) is undone by truncating back,
    where it used to cut the line and glue the next event to it, breaking the journal for good. A
    line cut by an older agent is ended first, so this one starts on a line of its own."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise disk_error(e, "the journal") from None
    finally:
        os.close(fd)


def disk_error(e, what):
    """An OSError while writing, as the operator should read it: a full disk is named as such."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return AgentError("the server's disk is full (writing %s): free some space on it, then try again" % what,
                          "no_space")
    return AgentError("cannot write %s: %s" % (what, e.strerror or e), "failed")


def _head(path, unchained=GENESIS):
    """(seq, hash) of the last chained line; (0, GENESIS) for a new journal, (0, `unchained`) for one
    whose last line was written before the chain (call with a function of that line)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL))
            lines = f.read(min(size, TAIL)).splitlines()  # bounded: never more than the tail
    except OSError:
        return 0, GENESIS
    if size > TAIL and lines:
        lines = lines[1:]  # the first may be cut in half
    for raw in reversed(lines):
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if "hash" in event:
            return int(event.get("seq", 0)), event["hash"]
        return 0, unchained(raw) if callable(unchained) else unchained
    return 0, GENESIS


def head(root):
    """What a desktop compares with what it imported last, to skip reading an unchanged journal."""
    seq, hash_ = _head(root.journal, lambda raw: "unchained-" + hashlib.sha256(raw).hexdigest())
    return {"seq": seq, "hash": hash_}


def read(root, after_id=None, limit=5000):
    """The events after `after_id` (all when None or unknown), at most `limit`; `more` says if there
    are others after them. Unreadable lines come back as {"unreadable": text} for the verifier."""
    try:
        with open(root.journal, "rb") as f:
            raw_lines = [line for line in f.read().splitlines() if line.strip()]
    except OSError:
        return {"events": [], "more": False, "lines": 0}
    events = []
    for raw in raw_lines:
        try:
            events.append(json.loads(raw))
        except ValueError:
            events.append({"unreadable": raw.decode("utf-8", "replace")[:200]})
    start = 0
    if after_id:
        for i in range(len(events) - 1, -1, -1):
            if events[i].get("id") == after_id:
                start = i + 1
                break
    chunk = events[start:start + limit]
    return {"events": chunk, "more": start + limit < len(events), "lines": len(events), "start": start}


def verify(events, prev=GENESIS, seq=0):
    """Check `events` continue the chain after (`seq`, `prev`). Returns (ok, index, problem); lines
    with no hash are accepted only at the very start (journals written before the chain)."""
    chained = prev != GENESIS or seq != 0
    for i, event in enumerate(events):
        if "unreadable" in event:
            return False, i, "line %d of the journal is not JSON" % (seq + 1)
        if "hash" not in event:
            if chained:
                return False, i, "event %s has no hash after chained events" % event.get("id", "?")
            continue
        chained = True
        if event.get("seq") != seq + 1:
            return False, i, "journal event #%s follows #%d: events are missing or moved" % (event.get("seq"), seq)
        if event.get("prev") != prev:
            return False, i, "journal event #%d does not link to the one before it" % (seq + 1)
        if line_hash(event) != event["hash"]:
            return False, i, "journal event #%d was changed after it was written" % (seq + 1)
        seq, prev = event["seq"], event["hash"]
    return True, len(events), ""
