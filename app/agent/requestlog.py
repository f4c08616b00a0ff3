"""Request log: one JSON line per prediction (input and output, cut to a few KB), rotated. Each line
is one write() on an O_APPEND file: while a switch overlaps two releases on the stable port both
runners append to the same file, and a line written in pieces could interleave with the other's."""
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
        self.size = os.fstat(self.file.fileno()).st_size

    def write(self, seconds, status, raw_in, raw_out, error, request_id=None):
        line = json.dumps({
            "ts": round(time.time(), 3), "version": self.version, "request_id": request_id, "status": status,
            "latency_ms": round(seconds * 1000, 3),
            "input": _cut(raw_in), "output": _cut(raw_out), "error": error,
        }).encode() + b"\n"
        with self.lock:
            self.file.write(line)
            self.size += len(line)
            if self.size > ROTATE_BYTES:
                self._rotate()

    def _rotate(self):
        self.file.close()
        for i in range(KEEP_FILES - 1, 0, -1):
            src = self.path if i == 1 else "%s.%d" % (self.path, i - 1)
            if os.path.exists(src):
                os.replace(src, "%s.%d" % (self.path, i))
        self._open()

    def close(self):
        with self.lock:
            self.file.close()


def _cut(raw):
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    return text if len(text) <= KEEP_CHARS else text[:KEEP_CHARS] + "…"
