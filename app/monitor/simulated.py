"""Samples that look real (the docs/monitoring.md schema), smooth in time, with no server: the tests,
the GUI benchmark and demos push them through the same code paths as the agent's samples."""
from __future__ import annotations

import math


def simulated_sample(ts: float, models=("iris",), seed: int = 0, interval: float = 1.0) -> dict:
    """A plausible sample (docs/monitoring.md schema) for tests, the bench and demos; smooth in `ts`."""
    phase = ts / 60.0 + seed
    total = 16e9
    sample = {
        "ts": ts, "interval_s": interval,
        "host": {"cpu_percent": 30 + 20 * math.sin(phase), "cpu_per_core": [],
                 "memory": {"total": total, "used": total * (0.5 + 0.1 * math.sin(phase / 3)), "available": 0},
                 "load": [1.0 + math.sin(phase), 1.0, 1.0],
                 "disk": {"path": "/srv/berth", "total": 1e12, "used": 4e11, "free": 6e11},
                 "net": {"rx_bytes": 0, "tx_bytes": 0}},
        "models": {},
    }
    for i, name in enumerate(models):
        p = phase + i
        rps = 20 + 10 * math.sin(p)
        sample["models"][name] = {
            "version": "1.0.0", "pid": 1000 + i, "cpu_percent": 5 + 4 * math.sin(p),
            "rss_bytes": 80e6 + 5e6 * math.sin(p / 2), "threads": 3, "open_files": 7, "uptime_s": ts % 1000,
            "requests_total": int(ts), "errors_total": 0, "requests_per_s": rps, "errors_per_s": 0.0,
            "latency_ms": {"p50": 4 + math.sin(p), "p95": 12 + 3 * math.sin(p), "p99": 25 + 5 * math.sin(p),
                           "window": "interval"},
            "histogram": [],
        }
    return sample
