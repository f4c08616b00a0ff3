"""A steady load for `berth bundle profile`: C keep-alive connections, each sending the input example
as fast as the runner answers, for a fixed time. Closed-loop on purpose: the rate it reaches is the
rate the runner sustains, and each latency is one request's round trip on loopback."""
from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    connections: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (q in 0..100) of the answered requests' latency."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        rank = max(1, -(-len(ordered) * q // 100))  # ceil(n*q/100), at least the first
        return ordered[int(rank) - 1]


def run_load(port: int, body: bytes, connections: int, seconds: float, path: str = "/predict") -> LoadResult:
    result = LoadResult(connections, seconds)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        failures, first = 0, ""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        try:
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                try:
                    conn.request("POST", path, body, headers)
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status == 200
                    if not ok and not first:
                        first = f"HTTP {resp.status}"
                except (OSError, http.client.HTTPException) as e:
                    ok = False
                    first = first or f"{type(e).__name__}: {e}"
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if ok:
                    mine.append((time.perf_counter() - t0) * 1000)
                else:
                    failures += 1
        finally:
            conn.close()
        with lock:
            result.latencies_ms.extend(mine)
            result.failures += failures
            result.first_failure = result.first_failure or first

    threads = [threading.Thread(target=client, name=f"profile-load-{i}", daemon=True) for i in range(connections)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    result.seconds = max(time.monotonic() - start, 1e-9)
    return result
