"""Request log: one JSON line per prediction (input and output, cut to a few KB), rotated. Each line
is one write() on an O_APPEND file: while a switch overlaps two releases on the stable port both
runners append to the same file, and a line written in pieces could interleave with the other's."""
import fcntl
import json
import os
import threading
import time

KEEP_CHARS = 4096
ROTATE_BYTES = 10 * 1024 * 1024
KEEP_FILES = 3


class RequestLog:
    def __init__(self, path, version):
        self.path = path
        self.version = version
        self.lock = threading.Lock()
        self._open()

    def _open(self):
        self.file = open(self.path, "ab", buffering=0)

    def write(self, seconds, status, raw_in, raw_out, error, request_id=None, shadow=False):
        """`shadow`: B's background copy of a request A answered (the router's X-Berth-Shadow), which
        shares A's request id; labelfigures counts a label once for each (the line says "shadow": true)."""
        item = {
            "ts": round(time.time(), 3), "version": self.version, "request_id": request_id, "status": status,
            "latency_ms": round(seconds * 1000, 3),
            "input": _cut(raw_in), "output": _cut(raw_out), "error": error,
        }
        if shadow:
            item["shadow"] = True
        line = json.dumps(item).encode() + b"\n"
        self.append_bytes(line)

    def append_bytes(self, data):
        """One write of whole lines, then rotation by the file's own size, not by a count of this
        writer's lines: the other writer's lines count too, and a file the other one rotated away
        (renamed, growing past the limit) is left at once."""
        with self.lock:
            self.file.write(data)
            if os.fstat(self.file.fileno()).st_size > ROTATE_BYTES:
                self._rotate()

    def _rotate(self):
        """Under a lock file, and only while the path is still this runner's file and over the limit:
        two runners (a switch, an experiment) append to one log, and each rotating on its own count
        renamed the other's fresh file over the rotated one, losing its lines."""
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            mine = os.fstat(self.file.fileno())
            try:
                now = os.stat(self.path)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino) and now.st_size > ROTATE_BYTES:
                for i in range(KEEP_FILES - 1, 0, -1):
                    src = self.path if i == 1 else "%s.%d" % (self.path, i - 1)
                    if os.path.exists(src):
                        os.replace(src, "%s.%d" % (self.path, i))
            self.file.close()
            self._open()  # the file now at the path: a new one, or the one the other runner started

    def close(self):
        with self.lock:
            self.file.close()


def _cut(raw):
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    return text if len(text) <= KEEP_CHARS else text[:KEEP_CHARS] + "…"
