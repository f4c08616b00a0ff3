"""The runner's own log (its stdout and stderr): rotated by size while it runs, and a traceback
repeated by a stream of failing requests written once a minute with a count, not once per request
(every 500 used to add a traceback: 1 MB/s of growth until the disk was full)."""
import os
import sys
import threading
import time
import traceback

MAX_LOG_BYTES = 5 * 1024 * 1024
REPEAT_WINDOW = 60.0


class RunnerLog:
    def __init__(self, path, max_bytes=MAX_LOG_BYTES, window=REPEAT_WINDOW, clock=time.monotonic):
        self.path, self.max_bytes, self.window, self.clock = path, max_bytes, window, clock
        self.lock = threading.Lock()
        self.seen = {}  # (type, message) -> [time written, suppressed since]

    def failure(self, error):
        """Write the traceback of `error` unless the same failure was written within the window."""
        key = (type(error).__name__, str(error)[:200])
        now = self.clock()
        with self.lock:
            entry = self.seen.get(key)
            if entry is not None and now - entry[0] < self.window:
                entry[1] += 1
                return
            suppressed = entry[1] if entry else 0
            self.seen[key] = [now, 0]
            if len(self.seen) > 1000:  # many distinct messages: forget the oldest
                for old in sorted(self.seen, key=lambda k: self.seen[k][0])[:500]:
                    del self.seen[old]
            if suppressed:
                sys.stderr.write("berth-runner: %d more of %s: %s (not written again)\n" % ((suppressed,) + key))
            traceback.print_exception(type(error), error, error.__traceback__)
            sys.stderr.flush()
            self._rotate_if_full()

    def _rotate_if_full(self):
        """Move the full log to .1 and point stdout and stderr at a new file at the same path."""
        if not self.path:
            return
        try:
            if os.fstat(sys.stderr.fileno()).st_size <= self.max_bytes:
                return
            os.replace(self.path, self.path + ".1")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:
            return
        sys.stdout.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
