"""How a sample becomes rows of the monitor history, and back: which metrics are kept, their
integer scaling, packed histograms, minute aggregates, and the history file's own tables (its
migrations: berth.sqlite never runs them). Split from history.py, which reads and writes them."""
from __future__ import annotations

import math
from array import array

from app.agent.histogram import BUCKETS, merge, percentile

BOUNDS = list(BUCKETS) + [math.inf]
NAN = float("nan")


HOST_METRICS = {"cpu_percent": ("cpu", 100), "memory_used": ("mem_used", 1), "memory_percent": ("mem_pct", 100),
                "load1": ("load1", 100), "disk_used_percent": ("disk_pct", 100)}
MODEL_METRICS = {"cpu_percent": ("cpu", 100), "rss_bytes": ("rss", 1), "requests_per_s": ("req", 1000),
                 "errors_per_s": ("err", 1000), "p50_ms": ("p50", 1000), "p95_ms": ("p95", 1000),
                 "p99_ms": ("p99", 1000)}
_HOST_COLS = ["cpu", "mem_used", "mem_pct", "load1", "disk_pct"]
_MODEL_COLS = ["cpu", "rss", "req", "err"]
_LATENCY = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
STATS = ("min", "avg", "max")


def _scaled(value, scale):
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(v) or math.isinf(v):
        return None
    return int(round(v * scale))


def host_values(sample: dict) -> list:
    """[cpu, mem_used, mem_pct, load1, disk_pct] of a sample, scaled."""
    host = sample.get("host") or {}
    mem = host.get("memory") or {}
    disk = host.get("disk") or {}
    load = host.get("load") or [None]
    total, used = mem.get("total") or 0, mem.get("used")
    dtotal, dused = disk.get("total") or 0, disk.get("used")
    return [_scaled(host.get("cpu_percent"), 100), _scaled(used, 1),
            _scaled(used / total * 100, 100) if total and used is not None else None,
            _scaled(load[0] if load else None, 100),
            _scaled(dused / dtotal * 100, 100) if dtotal and dused is not None else None]


def model_values(m: dict) -> list:
    """[cpu, rss, req, err, p50, p95, p99] of one model of a sample, scaled. Latency only when measured
    over the interval: a `since_start` figure says nothing about this moment."""
    lat = m.get("latency_ms") or {}
    interval = lat.get("window") == "interval"
    return [_scaled(m.get("cpu_percent"), 100), _scaled(m.get("rss_bytes"), 1),
            _scaled(m.get("requests_per_s"), 1000), _scaled(m.get("errors_per_s"), 1000),
            *(_scaled(lat.get(p), 1000) if interval else None for p, _q in _LATENCY)]


def pack_histogram(counts) -> bytes | None:
    """Sparse (index, count) pairs of the non-zero buckets."""
    if not counts:
        return None
    pairs = array("I")
    for i, n in enumerate(counts):
        if n:
            pairs.append(i)
            pairs.append(int(n))
    return pairs.tobytes() if pairs else None


def unpack_histogram(blob) -> list[int]:
    counts = [0] * len(BOUNDS)
    if blob:
        pairs = array("I")
        pairs.frombytes(blob)
        for k in range(0, len(pairs), 2):
            if pairs[k] < len(counts):
                counts[pairs[k]] += pairs[k + 1]
    return counts


def _agg(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return [None, None, None]
    return [min(vals), int(round(sum(vals) / len(vals))), max(vals)]


def aggregate_host(rows) -> list:
    """Rows of [cpu, mem_used, mem_pct, load1, disk_pct] -> [n, min, avg, max of each]."""
    out = [len(rows)]
    for k in range(len(_HOST_COLS)):
        out += _agg([r[k] for r in rows])
    return out


def aggregate_model(rows) -> list:
    """Rows of [cpu, rss, req, err, hist blob] -> [n, min, avg, max of each of the four, p50, p95, p99]
    (percentiles in microseconds from the merged histogram; None when the minute saw no request)."""
    out = [len(rows)]
    for k in range(len(_MODEL_COLS)):
        out += _agg([r[k] for r in rows])
    merged = merge(*(unpack_histogram(r[4]) for r in rows if r[4]))
    for _p, q in _LATENCY:
        v = percentile(BOUNDS, merged, q) if merged else None
        out.append(None if v is None else int(round(v * 1e6)))
    return out


def _tables(db):
    """The history's tables: clustered by (series, ts) for range scans, values stored as scaled
    integers (2-4 bytes on disk instead of 8), names interned in monitor_series."""
    for sql in (
        "CREATE TABLE monitor_series (id INTEGER PRIMARY KEY, server TEXT NOT NULL, model TEXT NOT NULL,"
        " UNIQUE (server, model))",
        "CREATE TABLE monitor_host_raw (series INTEGER NOT NULL, ts INTEGER NOT NULL, interval_ms INTEGER,"
        " cpu INTEGER, mem_used INTEGER, mem_pct INTEGER, load1 INTEGER, disk_pct INTEGER,"
        " PRIMARY KEY (series, ts)) WITHOUT ROWID",
        "CREATE TABLE monitor_model_raw (series INTEGER NOT NULL, ts INTEGER NOT NULL, interval_ms INTEGER,"
        " cpu INTEGER, rss INTEGER, req INTEGER, err INTEGER, p50 INTEGER, p95 INTEGER, p99 INTEGER, hist BLOB,"
        " PRIMARY KEY (series, ts)) WITHOUT ROWID",
        "CREATE TABLE monitor_host_minute (series INTEGER NOT NULL, ts INTEGER NOT NULL, n INTEGER,"
        " cpu_min INTEGER, cpu_avg INTEGER, cpu_max INTEGER, mem_used_min INTEGER, mem_used_avg INTEGER,"
        " mem_used_max INTEGER, mem_pct_min INTEGER, mem_pct_avg INTEGER, mem_pct_max INTEGER,"
        " load1_min INTEGER, load1_avg INTEGER, load1_max INTEGER, disk_pct_min INTEGER, disk_pct_avg INTEGER,"
        " disk_pct_max INTEGER, PRIMARY KEY (series, ts)) WITHOUT ROWID",
        "CREATE TABLE monitor_model_minute (series INTEGER NOT NULL, ts INTEGER NOT NULL, n INTEGER,"
        " cpu_min INTEGER, cpu_avg INTEGER, cpu_max INTEGER, rss_min INTEGER, rss_avg INTEGER, rss_max INTEGER,"
        " req_min INTEGER, req_avg INTEGER, req_max INTEGER, err_min INTEGER, err_avg INTEGER, err_max INTEGER,"
        " p50 INTEGER, p95 INTEGER, p99 INTEGER, PRIMARY KEY (series, ts)) WITHOUT ROWID",
        "CREATE TABLE monitor_gaps (server TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (server, ts))"
        " WITHOUT ROWID",
        "CREATE TABLE monitor_rollup (server TEXT PRIMARY KEY, done_until INTEGER NOT NULL)",
        "CREATE TABLE monitor_latest (server TEXT PRIMARY KEY, ts REAL, sample TEXT)",
    ):
        db.execute(sql)


# The name is the one it had in berth.sqlite's list (app/store/db.py), so a history file made before
# the two lists were split (which ran both) finds it applied.
MIGRATIONS = [("0004_monitor", _tables)]
