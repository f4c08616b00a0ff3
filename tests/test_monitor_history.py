"""Monitoring history on a real SQLite file: minute aggregates equal a direct computation, pruning
keeps the store bounded, gaps break the series, and everything survives a restart of Berth."""
import math
import random

import pytest

from app.agent.histogram import BUCKETS
from app.monitor.history import History
from app.store.db import open_db

T0 = 1_800_000_000 - 1_800_000_000 % 60  # a minute boundary
BOUNDS = list(BUCKETS) + [math.inf]


def sample(ts, cpu=10.0, models=None, interval=1.0, mem_used=4_000_000_000, load=0.5):
    return {"server": "box", "ts": ts, "interval_s": interval,
            "host": {"cpu_percent": cpu, "cpu_per_core": [cpu], "load": [load, 0.4, 0.3],
                     "memory": {"total": 8_000_000_000, "used": mem_used, "available": 8_000_000_000 - mem_used},
                     "disk": {"path": "/srv", "total": 1000, "used": 250, "free": 750},
                     "net": {"rx_bytes": 0, "tx_bytes": 0}},
            "models": models or {}}


def model(cpu=3.0, rss=30_000_000, rps=2.0, eps=0.0, hist=None):
    hist = hist or [0] * len(BOUNDS)
    has = sum(hist) > 0
    return {"version": "1.0.0", "pid": 1, "cpu_percent": cpu, "rss_bytes": rss, "threads": 3, "open_files": 7,
            "uptime_s": 1.0, "requests_total": 0, "errors_total": 0, "requests_per_s": rps, "errors_per_s": eps,
            "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0, "window": "interval"} if has else None,
            "histogram": hist}


def reference_percentile(counts, q):
    """Straight from the definition (linear inside the bucket), written out here on purpose."""
    total = sum(counts)
    rank, seen = q * total, 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            lower = BOUNDS[i - 1] if i else 0.0
            return (lower + (BOUNDS[i] - lower) * (rank - seen) / n) * 1000
        seen += n


def test_minute_aggregates_equal_a_direct_computation(tmp_path):
    rng = random.Random(7)
    h = History(tmp_path / "m.sqlite", clock=lambda: T0 + 180)
    cpus, rss, rps, hists = [], [], [], []
    for k in range(60):  # one sample a second through the first minute
        hist = [0] * len(BOUNDS)
        for _ in range(rng.randint(0, 30)):
            hist[min(len(hist) - 1, int(rng.gauss(20, 6)))] += 1
        c, r, q = round(rng.uniform(0, 400), 1), rng.randint(10_000_000, 90_000_000), round(rng.uniform(0, 50), 3)
        cpus.append(c), rss.append(r), rps.append(q), hists.append(hist)
        h.add(sample(T0 + k + 0.5, cpu=c / 4, models={"iris": model(cpu=c, rss=r, rps=q, hist=hist)}))
    h.add(sample(T0 + 61, models={"iris": model()}))  # the next minute: the first one is rolled up

    def one(metric, stat="avg", m="iris"):
        ts, vals = h.series("box", m, metric, T0, T0 + 59, resolution="minute", stat=stat)
        assert ts == [T0] and len(vals) == 1
        return vals[0]

    assert one("cpu_percent", "min") == pytest.approx(min(cpus), abs=0.01)
    assert one("cpu_percent", "max") == pytest.approx(max(cpus), abs=0.01)
    assert one("cpu_percent", "avg") == pytest.approx(sum(cpus) / 60, abs=0.01)
    assert one("rss_bytes", "avg") == pytest.approx(sum(rss) / 60, abs=1)
    assert one("rss_bytes", "max") == max(rss)
    assert one("requests_per_s", "avg") == pytest.approx(sum(rps) / 60, abs=0.001)
    assert one("cpu_percent", "max", m=None) == pytest.approx(max(cpus) / 4, abs=0.01)
    merged = [sum(col) for col in zip(*hists)]
    for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        assert one(name) == pytest.approx(reference_percentile(merged, q), abs=0.001), name
    # averaging the per-second p99s would be a different (wrong) number: the test can tell
    per_second = [reference_percentile(x, 0.99) for x in hists if sum(x)]
    assert abs(sum(per_second) / len(per_second) - one("p99_ms")) > 0.01
    h.close()


def test_pruning_keeps_the_store_bounded(tmp_path):
    now = [T0]
    h = History(tmp_path / "m.sqlite", keep_raw_s=300, keep_minute_s=1800, maintain_s=0, clock=lambda: now[0])
    step = 5
    for k in range(3 * 3600 // step):  # three hours, every 5 s, two models
        now[0] = T0 + k * step
        h.add(sample(now[0], models={"a": model(), "b": model()}))
    h.flush()
    db = h.db

    def count(table):
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    # raw: the last 5 minutes (+ the minute not rolled up yet); minutes: the last 30 (+1 in progress)
    assert 300 / step <= count("monitor_host_raw") <= (300 + 60) / step + 1
    assert 2 * 300 / step <= count("monitor_model_raw") <= 2 * ((300 + 60) / step + 1)
    assert 29 <= count("monitor_host_minute") <= 31
    assert 58 <= count("monitor_model_minute") <= 62
    oldest = db.execute("SELECT min(ts) FROM monitor_host_minute").fetchone()[0]
    assert oldest >= now[0] - 1800 - 60
    h.close()


def test_gaps_and_missing_runners_break_the_series(tmp_path):
    h = History(tmp_path / "m.sqlite", clock=lambda: T0 + 40)
    for k in range(40):
        models = {} if 20 <= k < 30 else {"iris": model(cpu=float(k))}  # iris stopped for 10 s
        h.add(sample(T0 + k, cpu=float(k), models=models))
    h.gap("box", T0 + 10.5)  # the stream broke between two samples that look continuous
    h.flush()
    ts, vals = h.series("box", None, "cpu_percent", T0, T0 + 40)
    nans = [t for t, v in zip(ts, vals) if math.isnan(v)]
    assert nans == [pytest.approx(T0 + 10.5)]
    assert [v for v in vals if not math.isnan(v)] == [float(k) for k in range(40)]

    ts, vals = h.series("box", "iris", "cpu_percent", T0, T0 + 40)
    nan_at = [t for t, v in zip(ts, vals) if math.isnan(v)]
    assert len(nan_at) == 2 and T0 + 10 < nan_at[0] < T0 + 11 and T0 + 19 < nan_at[1] < T0 + 30
    assert [v for v in vals if not math.isnan(v)] == [float(k) for k in range(40) if not 20 <= k < 30]
    # a series without a break has no NaN: the NaNs above are not noise
    ts, vals = h.series("box", None, "cpu_percent", T0 + 12, T0 + 39)
    assert not any(math.isnan(v) for v in vals) and len(vals) == 28
    h.close()


def test_minute_series_breaks_where_minutes_are_missing(tmp_path):
    h = History(tmp_path / "m.sqlite", clock=lambda: T0 + 7200)
    for minute in (0, 1, 2, 6, 7):  # Berth was closed for minutes 3-5
        for s in range(0, 60, 10):
            h.add(sample(T0 + minute * 60 + s, cpu=float(minute)))
    h.add(sample(T0 + 8 * 60))
    ts, vals = h.series("box", None, "cpu_percent", T0, T0 + 8 * 60 - 1)
    assert h.resolution(T0, T0 + 8 * 60) == "minute"  # older than the raw hour kept
    finite = [(t, v) for t, v in zip(ts, vals) if not math.isnan(v)]
    assert finite == [(T0 + m * 60, float(m)) for m in (0, 1, 2, 6, 7)]
    assert sum(math.isnan(v) for v in vals) == 1 and math.isnan(vals[3])
    h.close()


def test_history_survives_a_restart_of_berth(tmp_path):
    path = tmp_path / "monitor.sqlite"
    h = History(path, clock=lambda: T0 + 100)
    for k in range(90):  # a minute and a half: the second minute is left half done
        h.add(sample(T0 + k, cpu=float(k % 7), models={"iris": model(rss=1000 + k)}))
    h.gap("box", T0 + 95)
    h.close()

    h = History(open_db(path), clock=lambda: T0 + 400)  # Berth started again, 5 minutes later
    assert h.latest("box")["ts"] == T0 + 89 and h.latest("box")["models"]["iris"]["rss_bytes"] == 1089
    ts, vals = h.series("box", "iris", "rss_bytes", T0, T0 + 89, resolution="raw")
    assert vals == [1000.0 + k for k in range(90)]
    assert h.servers() == ["box"] and h.models("box") == ["iris"]
    h.maintain()  # what the first add does: the leftover half minute is rolled up as it is
    ts, vals = h.series("box", "iris", "rss_bytes", T0, T0 + 120, resolution="minute", stat="max")
    assert ts == [T0, T0 + 60] and vals == [1059.0, 1089.0]
    h.add(sample(T0 + 400))
    ts, vals = h.series("box", None, "cpu_percent", T0, T0 + 401, resolution="raw")
    assert math.isnan(vals[-2]) and ts[-1] == T0 + 400  # Berth was closed: a break, not a line
    h.close()


def test_unknown_metric_is_refused(tmp_path):
    h = History(tmp_path / "m.sqlite")
    with pytest.raises(ValueError, match="unknown model metric"):
        h.series("box", "iris", "load1", 0, 1)
    assert h.series("nobody", None, "cpu_percent", 0, 1) == ([], [])
    h.close()
