"""The server's own append-only history (journal.jsonl), written under the server lock."""
import json
import os
import time
import uuid


def utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def append(root, action, outcome, actor=None, **fields):
    event = {"id": uuid.uuid4().hex, "ts": utc_now(), "action": action, "outcome": outcome, "actor": actor or {}}
    event.update(fields)
    line = json.dumps(event, sort_keys=True) + "\n"
    fd = os.open(root.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return event


def read(root, after_id=None, limit=10000):
    try:
        with open(root.journal) as f:
            events = [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []
    if after_id:
        ids = [e.get("id") for e in events]
        if after_id in ids:
            events = events[ids.index(after_id) + 1:]
    return events[-limit:]
