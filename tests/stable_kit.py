"""Steady keep-alive load on a port from several client threads, for the switch tests: every
request's outcome and the time of each successful answer, so a test can say how many failed and
how long the longest pause between answers was."""
from __future__ import annotations

import http.client
import json
import threading
import time


class Load:
    """`threads` clients, each one keep-alive connection (http.client reconnects by itself after a
    `Connection: close`), posting to /predict until stop()."""

    def __init__(self, port: int, threads: int = 4, body=None, pace_s: float = 0.0):
        self.port, self.body = port, json.dumps(body if body is not None else {"x": 1}).encode()
        self.pace_s = pace_s  # each client's pause between its requests (0: as fast as answered)
        self.ok_times: list[float] = []
        self.answers: list[tuple[float, str]] = []  # (time, X-Berth-Version) of each success
        self.failures: list[str] = []
        self.versions: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + 5
        while not self.ok_times and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _client(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self._stop.is_set():
            try:
                conn.request("POST", "/predict", body=self.body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                raw = response.read()
                if response.status != 200:
                    raise RuntimeError("HTTP %d %r" % (response.status, raw[:80]))
                version = response.getheader("X-Berth-Version")
                if response.will_close:
                    conn.close()
                with self._lock:
                    now = time.monotonic()
                    self.ok_times.append(now)
                    self.answers.append((now, version))
                    self.versions.add(version)
                if self.pace_s:
                    self._stop.wait(self.pace_s)
            except Exception as e:  # every kind of failure counts: refused, reset, empty answer, 5xx
                with self._lock:
                    self.failures.append("%s: %s" % (type(e).__name__, e))
                conn.close()
                time.sleep(0.01)
        conn.close()

    def max_gap(self, start: float = float("-inf"), end: float = float("inf")) -> float:
        """The longest time between two successive successful answers (any client) between `start`
        and `end` (monotonic), in seconds."""
        times = sorted(t for t in self.ok_times if start <= t <= end)
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    def switch_window(self, old: str, new: str, margin: float = 0.1) -> tuple[float, float]:
        """From just before `new`'s first answer to just after `old`'s last one: the switch."""
        first_new = min(t for t, v in self.answers if v == new)
        last_old = max(t for t, v in self.answers if v == old)
        return min(first_new, last_old) - margin, max(first_new, last_old) + margin
