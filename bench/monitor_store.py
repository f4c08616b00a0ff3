"""How big and how fast the monitoring history is when full: 20 servers x 4 models, 1 Hz, 30 days.

    .venv/bin/python bench/monitor_store.py              # the full store (~2-4 min on 2 cores)
    .venv/bin/python bench/monitor_store.py --days 2     # a quick look

The store after pruning holds 1 hour of raw samples and 30 days of minute aggregates. The minute
rows of the 30 days before the last hour are written through History.insert_minutes (the path the
roll-up takes) with synthetic aggregates; the last hour goes through History.add, sample by sample,
as the console's writer thread does (roll-ups at each minute, maintenance and batch commits
included): that is the insert rate. Then the database size on disk and series queries over 1 h
(raw), 24 h and 7 d (minute), with the ratio to the goals.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.agent.histogram import BUCKETS  # noqa: E402
from app.monitor.history import History  # noqa: E402

GOALS = {"add (1 server x 4 models)": 1.0, "series 1 h (raw)": 30.0, "series 24 h (minute)": 50.0,
         "series 7 d (minute)": 50.0}  # milliseconds
NB = len(BUCKETS) + 1


def make_sample(server: str, ts: float, k: int, models: list[str], rng: random.Random) -> dict:
    out = {}
    for i, m in enumerate(models):
        hist = [0] * NB
        for _ in range(rng.randint(0, 12)):
            hist[min(NB - 1, max(0, int(rng.gauss(18 + i, 3))))] += 1
        n = sum(hist)
        out[m] = {"version": "1.0.0", "pid": 1000 + i, "cpu_percent": round(rng.uniform(0, 60), 1),
                  "rss_bytes": 40_000_000 + rng.randint(0, 4_000_000), "threads": 4, "open_files": 9,
                  "uptime_s": 1000.0 + k, "requests_total": k * 6, "errors_total": 0,
                  "requests_per_s": float(n), "errors_per_s": 0.0,
                  "latency_ms": {"p50": 2.0, "p95": 4.0, "p99": 6.0, "window": "interval"} if n else None,
                  "histogram": hist}
    return {"server": server, "ts": ts, "interval_s": 1.0,
            "host": {"cpu_percent": round(rng.uniform(0, 100), 1), "cpu_per_core": [1.0] * 8,
                     "memory": {"total": 16_000_000_000, "used": 6_000_000_000 + rng.randint(0, 10**8),
                                "available": 9_000_000_000},
                     "load": [round(rng.uniform(0, 4), 2), 1.0, 1.0],
                     "disk": {"path": "/srv/berth", "total": 10**12, "used": 4 * 10**11, "free": 6 * 10**11},
                     "net": {"rx_bytes": k * 1000, "tx_bytes": k * 500}},
            "models": out}


def minute_rows(start: int, minutes: int, model: bool, rng: random.Random):
    rows = []
    for j in range(minutes):
        ts = start + 60 * j
        if model:
            cpu, rss, req = rng.randint(0, 6000), 40_000_000 + rng.randint(0, 4_000_000), rng.randint(0, 12000)
            vals = [60, cpu // 2, cpu, cpu + 500, rss - 100_000, rss, rss + 100_000, req // 2, req, req + 2000,
                    0, 0, 0, 1800 + rng.randint(0, 400), 3900 + rng.randint(0, 800), 5900 + rng.randint(0, 900)]
        else:
            cpu = rng.randint(0, 10000)
            mem = 6_000_000_000 + rng.randint(0, 10**8)
            vals = [60, cpu // 2, cpu, min(10000, cpu + 2000), mem - 10**7, mem, mem + 10**7, 3700, 3750, 3800,
                    rng.randint(0, 300), 150, 400, 4000, 4000, 4000]
        rows.append((ts, vals))
    return rows


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times), max(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", type=int, default=20)
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--days", type=float, default=30)
    p.add_argument("--repeat", type=int, default=15, help="runs of each query (median shown)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder and print it")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="berth-bench-monitor-"))
    os.environ["BERTH_HOME"] = str(tmp)
    rng = random.Random(1)
    now = [1_800_000_000.0]  # the simulated clock; ends at "now"
    end = now[0]
    raw_start = end - 3600
    servers = [f"srv{i:02d}" for i in range(args.servers)]
    models = [f"model{j}" for j in range(args.models)]
    path = tmp / "monitor.sqlite"
    try:
        h = History(path, clock=lambda: now[0])
        # -- 30 days of minute aggregates, through the roll-up's write path --------------------------
        first_minute = int((raw_start - args.days * 86400) // 60 * 60)
        minutes = int((raw_start - first_minute) // 60)
        t = time.perf_counter()
        for s in servers:
            h.insert_minutes(h._id(s, ""), minute_rows(first_minute, minutes, False, rng), model=False)
            for m in models:
                h.insert_minutes(h._id(s, m), minute_rows(first_minute, minutes, True, rng), model=True)
            h.conn.execute("INSERT OR REPLACE INTO monitor_rollup VALUES (?,?)", (s, int(raw_start // 60 * 60)))
            h.flush()
        fill_s = time.perf_counter() - t
        n_minute = minutes * len(servers) * (1 + len(models))
        print(f"minute rows: {n_minute:,} ({args.days:g} days x {len(servers)} servers x {1 + len(models)} series) "
              f"written in {fill_s:.1f} s ({n_minute / fill_s:,.0f} rows/s)")

        # -- the last hour at 1 Hz through add() ---------------------------------------------------------
        h.close()
        h = History(path, clock=lambda: now[0])  # a fresh start of Berth, as the writer thread opens it
        batch = []
        for k in range(3600):
            batch.append([make_sample(s, raw_start + k, k, models, rng) for s in servers])
        t = time.perf_counter()
        for k, samples in enumerate(batch):
            now[0] = raw_start + k
            for sample in samples:
                h.add(sample)
        h.flush()
        add_s = time.perf_counter() - t
        n_add = 3600 * len(servers)
        add_ms = add_s / n_add * 1000
        print(f"raw: {n_add:,} samples (x{len(models)} models) added in {add_s:.1f} s: {n_add / add_s:,.0f} samples/s, "
              f"{add_ms * 1000:.0f} us per add (roll-ups, maintenance, commits included)")

        h.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = path.stat().st_size + sum(f.stat().st_size for f in tmp.glob("monitor.sqlite-*"))
        counts = {t: h.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("monitor_host_raw", "monitor_model_raw", "monitor_host_minute", "monitor_model_minute")}
        print(f"database: {size / 1e6:,.0f} MB on disk; rows: " + ", ".join(f"{k[8:]} {v:,}" for k, v in counts.items()))
        print(f"  {size / max(1, sum(counts.values())):.0f} bytes per row on average (all tables, B-tree overhead included)")

        # -- queries --------------------------------------------------------------------------------------
        picks = [(servers[i % len(servers)], models[i % len(models)]) for i in range(args.repeat)]
        results = {"add (1 server x 4 models)": (add_ms, add_ms, add_ms)}
        for label, window, res in (("series 1 h (raw)", 3600, "raw"), ("series 24 h (minute)", 86400, "minute"),
                                   ("series 7 d (minute)", 7 * 86400, "minute"),
                                   ("series 30 d (minute)", args.days * 86400, "minute")):
            it = iter(picks * 3)
            points = []

            def q():
                s, m = next(it)
                ts, vals = h.series(s, m, "p99_ms", end - window, end, resolution=res)
                ts2, vals2 = h.series(s, None, "cpu_percent", end - window, end, resolution=res)
                points.append(len(ts) + len(ts2))
            assert h.resolution(end - window, end) == res or window > 3600
            med, lo, hi = timed(q, args.repeat)
            results[label] = (med / 2, lo / 2, hi / 2)  # two series per run
            print(f"{label}: {med / 2:.1f} ms per series (min {lo / 2:.1f}, max {hi / 2:.1f}), "
                  f"{points[0] // 2:,} points")
        h.close()

        print("\nratio to goals (measured / goal; below 1 is within the goal):")
        for label, goal in GOALS.items():
            med = results[label][0]
            print(f"  {label:28s} {med:8.3f} ms  goal {goal:5.1f} ms  {med / goal:5.2f}x")
        ok = all(results[label][0] <= goal for label, goal in GOALS.items())
        print(f"\nsummary: servers={len(servers)} models={len(models)} days={args.days:g} size_mb={size / 1e6:.0f} "
              f"add_us={add_ms * 1000:.0f} q1h_ms={results['series 1 h (raw)'][0]:.1f} "
              f"q24h_ms={results['series 24 h (minute)'][0]:.1f} q7d_ms={results['series 7 d (minute)'][0]:.1f} "
              f"all_goals_met={ok}")
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
