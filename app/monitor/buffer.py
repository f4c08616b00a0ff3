"""The live window of monitoring data, in memory: a fixed-size ring buffer per (server, model, metric).

Memory stays flat however long the console runs: every ring is two numpy arrays (timestamps, values)
of at most `capacity` points. A ring starts small and doubles only while its points span less than
GROW_SPAN_S, so a server sampled every 5 s (its live data on no screen) keeps ~128 points, not 1200
(100 servers: 25 MB of rings otherwise). A gap (stream broken, model not running in a sample) is one NaN point, so a
curve drawn with connect='finite' breaks there instead of drawing a line across it.
"""
from __future__ import annotations

import math

import numpy as np

HOST_METRICS = ("cpu_percent", "memory_used", "memory_percent", "load1", "disk_used_percent")
MODEL_METRICS = ("cpu_percent", "rss_bytes", "memory_percent", "requests_per_s", "errors_per_s",
                 "p50_ms", "p95_ms", "p99_ms")
LIVE_SECONDS = 300
CAPACITY = 1200  # 5 minutes at 4 Hz (the fastest interval the agent allows), 20 minutes at 1 Hz
START = 64  # a ring's first size
GROW_SPAN_S = 2 * LIVE_SECONDS  # a full ring whose points span less grows (up to its capacity)


def _num(value) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def flatten(sample: dict) -> dict[tuple[str | None, str], float]:
    """The numbers a view draws, from one sample (docs/monitoring.md): {(model or None, metric): value}."""
    out: dict[tuple[str | None, str], float] = {}
    host = sample.get("host") or {}
    memory = host.get("memory") or {}
    total = _num(memory.get("total"))
    used = _num(memory.get("used"))
    load = host.get("load") or []
    disk = host.get("disk") or {}
    disk_total = _num(disk.get("total"))
    out[(None, "cpu_percent")] = _num(host.get("cpu_percent"))
    out[(None, "memory_used")] = used
    out[(None, "memory_percent")] = used / total * 100 if total > 0 else math.nan
    out[(None, "load1")] = _num(load[0]) if load else math.nan
    out[(None, "disk_used_percent")] = _num(disk.get("used")) / disk_total * 100 if disk_total > 0 else math.nan
    for model, m in (sample.get("models") or {}).items():
        latency = m.get("latency_ms") or {}
        if latency.get("window") not in (None, "interval"):  # "since_start" says nothing about this moment
            latency = {}
        rss = _num(m.get("rss_bytes"))
        out[(model, "cpu_percent")] = _num(m.get("cpu_percent"))
        out[(model, "rss_bytes")] = rss
        out[(model, "memory_percent")] = rss / total * 100 if total > 0 else math.nan
        out[(model, "requests_per_s")] = _num(m.get("requests_per_s"))
        out[(model, "errors_per_s")] = _num(m.get("errors_per_s"))
        for p in ("p50", "p95", "p99"):
            out[(model, f"{p}_ms")] = _num(latency.get(p))
    return out


class Ring:
    """`capacity` (ts, value) pairs, oldest dropped first; `arrays()` gives them oldest first."""

    __slots__ = ("ts", "values", "head", "count", "max")

    def __init__(self, capacity: int):
        self.max = capacity
        self.ts = np.full(min(capacity, START), np.nan)
        self.values = np.full(min(capacity, START), np.nan)
        self.head = 0  # where the next point goes
        self.count = 0

    @property
    def capacity(self) -> int:
        return self.max

    def _grow(self, size: int) -> None:
        """Room for `size` points, the ones held kept in order (oldest at 0)."""
        ts, values = self.arrays()
        self.ts, self.values = np.full(size, np.nan), np.full(size, np.nan)
        self.ts[:len(ts)], self.values[:len(ts)] = ts, values
        self.head = len(ts) % size

    def append(self, ts: float, value: float) -> None:
        n = len(self.ts)
        if self.count == n < self.max and ts - self.ts[self.head] < GROW_SPAN_S:  # full, and young
            self._grow(min(self.max, 2 * n))
        self.ts[self.head] = ts
        self.values[self.head] = value
        self.head = (self.head + 1) % len(self.ts)
        self.count = min(self.count + 1, len(self.ts))

    def load(self, ts: np.ndarray, values: np.ndarray) -> None:
        """Replace the content with the newest `capacity` of these points (in time order)."""
        ts, values = ts[-self.max:], values[-self.max:]
        n = len(ts)
        if n > len(self.ts):
            self.ts, self.values = np.full(n, np.nan), np.full(n, np.nan)
        self.ts[:n], self.values[:n] = ts, values
        self.ts[n:], self.values[n:] = math.nan, math.nan
        self.count, self.head = n, n % len(self.ts)

    def last(self) -> tuple[float, float]:
        if not self.count:
            return math.nan, math.nan
        i = (self.head - 1) % len(self.ts)
        return float(self.ts[i]), float(self.values[i])

    def arrays(self, since: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Copies, oldest first; only points at or after `since` when given. Only what is returned is
        copied (a search in views of the ring), so the temporaries of a refresh stay small."""
        n, cap, head = self.count, len(self.ts), self.head
        segments = [(0, n)] if n < cap else [(head, cap), (0, head)]
        if since is not None:
            segments = [(a + int(np.searchsorted(self.ts[a:b], since, side="left")), b) for a, b in segments]
        segments = [(a, b) for a, b in segments if b > a]
        if not segments:
            return np.empty(0), np.empty(0)
        if len(segments) == 1:
            a, b = segments[0]
            return self.ts[a:b].copy(), self.values[a:b].copy()
        return (np.concatenate([self.ts[a:b] for a, b in segments]),
                np.concatenate([self.values[a:b] for a, b in segments]))


class MonitorBuffer:
    """Rings keyed by (server, model or None, metric). One thread feeds and reads it (the console's GUI
    thread, through its MonitorFeed): no lock, so a refresh costs dict look-ups only."""

    def __init__(self, capacity: int = CAPACITY):
        self.capacity = capacity
        self.rings: dict[tuple[str, str | None, str], Ring] = {}
        self.latest: dict[str, dict] = {}  # server -> its last sample
        self.now: dict[str, dict] = {}  # server -> flatten() of its last sample ({} after a break): current()
        self.models: dict[str, set[str]] = {}  # server -> models seen
        self.last_ts: dict[str, float] = {}

    def add(self, server: str, sample: dict) -> None:
        ts = _num(sample.get("ts"))
        if math.isnan(ts) or ts <= self.last_ts.get(server, -math.inf):
            return  # a repeat, or the server's clock went back: the rings stay in time order
        values = flatten(sample)
        seen = self.models.setdefault(server, set())
        present = {model for model, _ in values if model is not None}
        for model in seen - present:  # not running in this sample: a break in its curves
            self._gap_model(server, model, ts)
        seen |= present
        for (model, metric), value in values.items():
            self._ring(server, model, metric).append(ts, value)
        self.latest[server] = sample
        self.now[server] = values
        self.last_ts[server] = ts

    def gap(self, server: str, ts: float | None = None) -> None:
        """The stream broke: one NaN point in every series of the server (a curve breaks there)."""
        last = self.last_ts.get(server)
        if last is None:
            return
        ts = last + 1e-3 if ts is None or ts < last else ts  # kept in order within each ring
        self.now[server] = {}
        for (s, model, metric), ring in self.rings.items():
            if s == server and not math.isnan(ring.last()[1]):
                ring.append(ts, math.nan)

    def preload(self, server: str, series: dict) -> None:
        """Points read from History ({(model or None, metric): (ts, values)}, oldest first) put before
        what the rings hold, then a break: the previous session's data, shown at once on a restart."""
        newest = -math.inf
        for (model, metric), (ts, values) in series.items():
            ts, values = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
            ring = self._ring(server, model, metric)
            live_ts, live_values = ring.arrays()
            if len(live_ts):  # samples came in before History was read: they stay, after it
                keep = ts < live_ts[0]
                ts, values = ts[keep], values[keep]
            if not len(ts):
                continue
            newest = max(newest, float(ts[-1]))
            cut = (ts[-1] + live_ts[0]) / 2 if len(live_ts) else ts[-1] + 1e-3
            ring.load(np.concatenate([ts, [cut], live_ts]), np.concatenate([values, [math.nan], live_values]))
            if model is not None:
                self.models.setdefault(server, set()).add(model)
        if newest > self.last_ts.get(server, -math.inf):
            self.last_ts[server] = newest + 1e-3  # a later sample only: the rings stay in time order

    def _gap_model(self, server: str, model: str, ts: float) -> None:
        for metric in MODEL_METRICS:
            ring = self.rings.get((server, model, metric))
            if ring is not None and not math.isnan(ring.last()[1]):
                ring.append(ts, math.nan)

    def _ring(self, server: str, model: str | None, metric: str) -> Ring:
        key = (server, model, metric)
        ring = self.rings.get(key)
        if ring is None:
            ring = self.rings[key] = Ring(self.capacity)
        return ring

    def series(self, server: str, model: str | None, metric: str,
               since: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        ring = self.rings.get((server, model, metric))
        if ring is None:
            return np.empty(0), np.empty(0)
        return ring.arrays(since)

    def current(self, server: str, model: str | None, metric: str) -> float:
        """The last value if the server's last sample has it (NaN if the model was absent or the stream
        broke since): a dict look-up, the overview asks for hundreds a second."""
        return self.now.get(server, {}).get((model, metric), math.nan)

    def servers(self) -> list[str]:
        return sorted(self.latest)

    def forget(self, server: str) -> None:
        for key in [k for k in self.rings if k[0] == server]:
            del self.rings[key]
        for d in (self.latest, self.now, self.models, self.last_ts):
            d.pop(server, None)

    def nbytes(self) -> int:
        return sum(r.ts.nbytes + r.values.nbytes for r in self.rings.values())
