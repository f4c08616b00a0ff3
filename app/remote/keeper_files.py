"""The keeper's file requests: an upload and the small file operations a change needs, run on the
held connection so a deploy logs in no more than a status does.

An upload names local files: the keeper runs as the caller's Unix user on the same computer (the
socket answers no one else), so it reads them itself and only the byte counts cross the socket.
The caller cancels by writing a line (or by going away): the upload stops as a direct one would,
what was sent stays to be resumed."""
from __future__ import annotations

import os
import select
import threading
import time
from pathlib import Path

from .transport import SendJob

BYTES_EVERY = 0.05  # seconds between two byte counts sent to the caller
FILE_OPS = ("exists", "mkdirs", "chmod", "rename", "remove_tree", "remove_file")  # path arguments only


def send(transport, request: dict, out, conn) -> None:
    """The upload of request["jobs"] ([local, remote, offset, size] each): {"bytes": n} lines while
    it runs, then the result (or the error, through out's caller)."""
    jobs = [SendJob(Path(local), str(remote), int(offset), int(size)) for local, remote, offset, size in request["jobs"]]
    if any(not os.path.isabs(j.local) for j in jobs):
        raise ValueError("an upload names its local files by absolute path")
    stop, done = threading.Event(), threading.Event()
    threading.Thread(target=_watch, args=(conn, stop, done), daemon=True).start()
    counted = _Counter(out)
    try:
        transport.send_files(jobs, counted.add, stop.is_set)
    finally:
        done.set()
        counted.flush()
    return None


def file_op(transport, request: dict):
    """One of FILE_OPS with its path (and mode) arguments."""
    name, args = str(request.get("name")), list(request.get("args") or ())
    if name not in FILE_OPS or not all(isinstance(a, (str, int)) for a in args):
        raise ValueError(f"not a file operation the keeper runs: {name}")
    return getattr(transport, name)(*args)


def _watch(conn, stop: threading.Event, done: threading.Event) -> None:
    """Anything the caller writes (or its going away) stops the upload."""
    while not done.is_set():
        try:
            ready, _, _ = select.select([conn], [], [], 0.5)
            if ready and not done.is_set():
                conn.recv(64)
                stop.set()
                return
        except (OSError, ValueError):  # closed under us: the call is over
            stop.set()
            return


class _Counter:
    """Bytes from the sending threads, sent to the caller at most every BYTES_EVERY seconds."""

    def __init__(self, out):
        self.out, self.lock = out, threading.Lock()
        self.pending, self.last = 0, 0.0

    def add(self, n: int) -> None:
        with self.lock:
            self.pending += n
            if time.monotonic() - self.last < BYTES_EVERY:
                return
            n, self.pending, self.last = self.pending, 0, time.monotonic()
        self.out.send({"bytes": n})

    def flush(self) -> None:
        with self.lock:
            n, self.pending = self.pending, 0
        if n:
            self.out.send({"bytes": n})
