"""Request log: one JSON line per prediction (input and output, cut to a few KB), rotated."""
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
        self.file = open(path, "a", buffering=1)

    def write(self, seconds, status, raw_in, raw_out, error):
        line = json.dumps({
            "ts": round(time.time(), 3), "version": self.version, "status": status,
            "latency_ms": round(seconds * 1000, 3),
            "input": _cut(raw_in), "output": _cut(raw_out), "error": error,
        }) + "\n"
        with self.lock:
            self.file.write(line)
            if self.file.tell() > ROTATE_BYTES:
                self._rotate()

    def _rotate(self):
        self.file.close()
        for i in range(KEEP_FILES - 1, 0, -1):
            src = self.path if i == 1 else "%s.%d" % (self.path, i - 1)
            if os.path.exists(src):
                os.replace(src, "%s.%d" % (self.path, i))
        self.file = open(self.path, "a", buffering=1)

    def close(self):
        with self.lock:
            self.file.close()


def _cut(raw):
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    return text if len(text) <= KEEP_CHARS else text[:KEEP_CHARS] + "…"
