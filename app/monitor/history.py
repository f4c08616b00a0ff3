"""Monitoring history in SQLite: every sample for the last hour, 1-minute aggregates for 30 days.

    h = History(db)                  # a sqlite-utils Database, a path, or None (BERTH_HOME/monitor.sqlite)
    h.add(sample)                    # a sample of docs/monitoring.md with "server" added
    h.gap(server, ts)                # the stream broke at ts: graphs draw a break there
    h.series(server, model, metric, since, until)  -> (timestamps, values), NaN at breaks
    h.latest(server)                 # the newest sample stored, as it came
    h.flush(); h.close()

One History per thread: its SQLite connection stays in the thread that opened it (sqlite3 refuses
a call from another thread). The console writes from ONE writer thread and reads with a History of
its own elsewhere; `add` commits in batches (at most `commit_s` seconds old), so a reader on another
connection sees samples up to that much later.

Tables (MIGRATIONS in history_rows.py: the history's own file runs only these, berth.sqlite never) are clustered
by (series, ts), so a window is one range scan. Values are scaled integers (cpu 1/100 %, rates
1/1000 per s, latency in microseconds, bytes as is): SQLite stores small integers in 1-4 bytes, a
REAL always in 8.

Minute aggregates are made from the stored raw rows once a minute is over (per server, on its own
clock: `ts` is the server's), so a restart of Berth loses nothing: the next `add` or maintenance
rolls up what the previous session left. Latency percentiles of a minute come from the merged
per-sample histograms (app/agent/histogram.merge + percentile), never from averaging percentiles.
Pruning runs every `maintain_s` seconds from `add`, and each run deletes a bounded amount.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from app.agent.histogram import BUCKETS

from .history_rows import HOST_METRICS, MIGRATIONS, MODEL_METRICS, STATS, aggregate_host, aggregate_model, host_values, model_values, pack_histogram

KEEP_RAW_S = 3600
KEEP_MINUTE_S = 30 * 86400
COMMIT_S = 1.0
MAINTAIN_S = 60.0
PRUNE_CHUNK_S = 86400  # each maintenance deletes at most one day of minute rows per series
SILENT_S = 120.0  # a server not heard of for this long: its last minute is rolled up as it is
CACHE_KB = 8000  # SQLite page cache of a History connection (bench/monitor_gui.py: RSS flat after ~30 min)
BOUNDS = list(BUCKETS) + [math.inf]
NAN = float("nan")

# metric -> (column, scale)


def _open(db):
    from app.store.db import migrate, open_db

    if db is None:
        from app.store import paths

        return open_db(paths.berth_home() / "monitor.sqlite", MIGRATIONS), True
    if isinstance(db, (str, Path)):
        return open_db(Path(db), MIGRATIONS), True
    if "monitor_series" not in db.table_names():  # a Database opened some other way
        migrate(db, MIGRATIONS)
    return db, False


class History:
    def __init__(self, db=None, *, keep_raw_s: float = KEEP_RAW_S, keep_minute_s: float = KEEP_MINUTE_S,
                 commit_s: float = COMMIT_S, maintain_s: float = MAINTAIN_S, clock=time.time):
        self.db, self._own = _open(db)
        self.conn = self.db.conn
        if self._own:  # 8 MB of page cache, not open_db's 32: the writes touch few pages, and a bigger
            self.conn.execute(f"PRAGMA cache_size=-{CACHE_KB}")  # cache grows RSS for hours before it is full
        self.keep_raw_s, self.keep_minute_s = keep_raw_s, keep_minute_s
        self.commit_s, self.maintain_s = commit_s, maintain_s
        self.clock = clock
        self._ids: dict[tuple[str, str], int] = {}
        self._minute: dict[str, int] = {}  # server -> minute of its newest sample
        self._heard: dict[str, float] = {}  # server -> local monotonic time of its newest sample
        self._done: dict[str, int] = {}  # server -> minutes before this (unix s) are rolled up
        self._dirty = False
        self._last_commit = time.monotonic()
        self._last_maintain = None  # first maintenance on the first add

    # -- writing ----------------------------------------------------------------------------------
    def add(self, sample: dict) -> None:
        server = sample["server"]
        ts = float(sample["ts"])
        ms = int(round(ts * 1000))
        iv = sample.get("interval_s")
        iv_ms = int(round(float(iv) * 1000)) if iv is not None else None
        c = self.conn
        c.execute("INSERT OR REPLACE INTO monitor_host_raw VALUES (?,?,?,?,?,?,?,?)",
                  (self._id(server, ""), ms, iv_ms, *host_values(sample)))
        models = sample.get("models") or {}
        if models:
            c.executemany("INSERT OR REPLACE INTO monitor_model_raw VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                          [(self._id(server, name), ms, iv_ms, *model_values(m), pack_histogram(m.get("histogram")))
                           for name, m in models.items()])
        c.execute("INSERT OR REPLACE INTO monitor_latest VALUES (?,?,?)", (server, ts, json.dumps(sample)))
        self._dirty = True
        now = time.monotonic()
        self._heard[server] = now
        minute = int(ts // 60)
        before = self._minute.get(server)
        self._minute[server] = minute if before is None else max(before, minute)
        if before is not None and minute > before:
            self.rollup(server, minute * 60)
        if self._last_maintain is None or now - self._last_maintain >= self.maintain_s:
            self._last_maintain = now
            self.maintain()
        if now - self._last_commit >= self.commit_s:
            self.flush()

    def gap(self, server: str, ts: float | None = None) -> None:
        """The stream of `server` broke at `ts` (default now): a raw series has a NaN there."""
        ts = self.clock() if ts is None else ts
        self.conn.execute("INSERT OR IGNORE INTO monitor_gaps VALUES (?,?)", (server, int(round(ts * 1000))))
        self._dirty = True
        if time.monotonic() - self._last_commit >= self.commit_s:
            self.flush()

    def flush(self) -> None:
        if self._dirty or self.conn.in_transaction:
            self.conn.commit()
        self._dirty = False
        self._last_commit = time.monotonic()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._own:
                self.db.close()

    def rollup(self, server: str, upto: float) -> int:
        """Aggregate the raw rows of `server` into minute rows, for every minute before `upto` (unix
        seconds, rounded down to a minute) not rolled up yet. Returns the number of minute rows made."""
        upto = int(upto // 60 * 60)
        start = self._done_until(server)
        if start is not None and upto <= start:
            return 0
        lo = (start if start is not None else 0) * 1000
        hi = upto * 1000
        ids = self._series_ids(server)
        made = 0
        host = ids.get("")
        if host is not None:
            groups: dict[int, list] = {}
            for row in self.conn.execute("SELECT ts, cpu, mem_used, mem_pct, load1, disk_pct FROM monitor_host_raw "
                                         "WHERE series = ? AND ts >= ? AND ts < ?", (host, lo, hi)):
                groups.setdefault(row[0] // 60000, []).append(row[1:])
            self.conn.executemany("INSERT OR REPLACE INTO monitor_host_minute VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                  [(host, m * 60, *aggregate_host(rows)) for m, rows in groups.items()])
            made += len(groups)
        for model, sid in ids.items():
            if not model:
                continue
            groups = {}
            for row in self.conn.execute("SELECT ts, cpu, rss, req, err, hist FROM monitor_model_raw "
                                         "WHERE series = ? AND ts >= ? AND ts < ?", (sid, lo, hi)):
                groups.setdefault(row[0] // 60000, []).append(row[1:])
            self.insert_minutes(sid, [(m * 60, aggregate_model(rows)) for m, rows in groups.items()], model=True)
            made += len(groups)
        self._done[server] = upto
        self.conn.execute("INSERT OR REPLACE INTO monitor_rollup VALUES (?,?)", (server, upto))
        self._dirty = True
        return made

    def insert_minutes(self, series_id: int, rows, model: bool) -> None:
        """Store minute rows [(minute start, aggregate_host/aggregate_model list)] of one series (the
        path rollup takes; the bench fills 30 days through it)."""
        if model:
            sql = "INSERT OR REPLACE INTO monitor_model_minute VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        else:
            sql = "INSERT OR REPLACE INTO monitor_host_minute VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        self.conn.executemany(sql, [(series_id, ts, *vals) for ts, vals in rows])
        self._dirty = True

    def maintain(self) -> None:
        """Roll up servers gone silent, prune what is older than kept (a bounded amount per call)."""
        now = self.clock()
        mono = time.monotonic()
        for server in self._servers():
            heard = self._heard.get(server)
            if heard is None or mono - heard >= SILENT_S:
                newest = self.conn.execute(
                    "SELECT max(ts) FROM monitor_host_raw WHERE series = ?", (self._id(server, ""),)).fetchone()[0]
                if newest is not None and (heard is not None or newest / 1000 < now - SILENT_S):
                    self.rollup(server, newest / 1000 + 60)
        raw_cut = int((now - self.keep_raw_s) * 1000)
        minute_cut = int(now - self.keep_minute_s)
        for sid, server in self.conn.execute("SELECT id, server FROM monitor_series").fetchall():
            done = self._done_until(server)
            cut = min(raw_cut, (done or 0) * 1000)  # never prune raw rows not rolled up yet
            for table in ("monitor_host_raw", "monitor_model_raw"):
                self.conn.execute(f"DELETE FROM {table} WHERE series = ? AND ts < ?", (sid, cut))
            for table in ("monitor_host_minute", "monitor_model_minute"):
                oldest = self.conn.execute(f"SELECT min(ts) FROM {table} WHERE series = ?", (sid,)).fetchone()[0]
                if oldest is not None and oldest < minute_cut:
                    self.conn.execute(f"DELETE FROM {table} WHERE series = ? AND ts < ?",
                                      (sid, min(minute_cut, oldest + PRUNE_CHUNK_S)))
        self.conn.execute("DELETE FROM monitor_gaps WHERE ts < ?", (minute_cut * 1000,))
        self._dirty = True

    # -- reading ----------------------------------------------------------------------------------
    def latest(self, server: str) -> dict | None:
        row = self.conn.execute("SELECT sample FROM monitor_latest WHERE server = ?", (server,)).fetchone()
        return json.loads(row[0]) if row else None

    def servers(self) -> list[str]:
        return self._servers()

    def models(self, server: str) -> list[str]:
        return sorted(m for m in self._series_ids(server) if m)

    def resolution(self, since: float, until: float) -> str:
        """"raw" when the window is at most an hour and still within the raw rows kept, else "minute"."""
        if until - since <= self.keep_raw_s + 60 and since >= self.clock() - self.keep_raw_s - 60:
            return "raw"
        return "minute"

    def series(self, server: str, model: str | None, metric: str, since: float, until: float,
               resolution: str | None = None, stat: str = "avg") -> tuple[list[float], list[float]]:
        """(timestamps, values) of one metric in [since, until], oldest first; a NaN value marks a break
        (a recorded gap, or no sample where one was due: stream down, runner not running). Raw rows
        for a window within the last hour, minute rows (`stat`: min, avg or max; the percentiles are
        per minute) otherwise. A missing value (e.g. no request, so no latency) is left out."""
        metrics = MODEL_METRICS if model else HOST_METRICS
        if metric not in metrics:
            raise ValueError(f"unknown {'model' if model else 'host'} metric {metric!r}; "
                             f"one of {', '.join(metrics)}")
        if stat not in STATS:
            raise ValueError(f"stat must be one of {', '.join(STATS)}")
        column, scale = metrics[metric]
        sid = self._series_ids(server).get(model or "")
        if sid is None:
            return [], []
        resolution = resolution or self.resolution(since, until)
        kind = "model" if model else "host"
        times: list[float] = []
        values: list[float] = []
        prev = None
        if resolution == "raw":
            gaps = [g / 1000 for (g,) in self.conn.execute(
                "SELECT ts FROM monitor_gaps WHERE server = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                (server, int(since * 1000) - 60000, int(until * 1000)))]
            gi = 0
            prev_iv = 0.0
            for ts_ms, iv_ms, v in self.conn.execute(
                    f"SELECT ts, interval_ms, {column} FROM monitor_{kind}_raw WHERE series = ? AND ts >= ? AND ts <= ?"
                    " ORDER BY ts", (sid, int(since * 1000), int(until * 1000))):
                ts = ts_ms / 1000
                iv = (iv_ms or 1000) / 1000
                while gi < len(gaps) and (prev is None or gaps[gi] <= prev) and gaps[gi] <= ts:
                    gi += 1  # gaps before the first row, or already passed
                broken = prev is not None and gi < len(gaps) and gaps[gi] <= ts
                if prev is not None and (broken or ts - prev > max(2.0 * max(iv, prev_iv), max(iv, prev_iv) + 1.0)):
                    times.append((prev + ts) / 2)
                    values.append(NAN)
                if v is not None:
                    times.append(ts)
                    values.append(v / scale)
                prev, prev_iv = ts, iv
        elif resolution == "minute":
            col = column if column in ("p50", "p95", "p99") else f"{column}_{stat}"
            for ts, v in self.conn.execute(
                    f"SELECT ts, {col} FROM monitor_{kind}_minute WHERE series = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                    (sid, int(since // 60 * 60), int(until))):
                if prev is not None and ts - prev > 90:
                    times.append((prev + ts) / 2)
                    values.append(NAN)
                if v is not None:
                    times.append(float(ts))
                    values.append(v / scale)
                prev = ts
        else:
            raise ValueError("resolution must be 'raw' or 'minute'")
        return times, values

    # -- internals --------------------------------------------------------------------------------
    def _id(self, server: str, model: str) -> int:
        key = (server, model)
        sid = self._ids.get(key)
        if sid is None:
            self.conn.execute("INSERT OR IGNORE INTO monitor_series (server, model) VALUES (?,?)", key)
            sid = self.conn.execute("SELECT id FROM monitor_series WHERE server = ? AND model = ?", key).fetchone()[0]
            self._ids[key] = sid
        return sid

    def _series_ids(self, server: str) -> dict[str, int]:
        rows = self.conn.execute("SELECT model, id FROM monitor_series WHERE server = ?", (server,)).fetchall()
        for model, sid in rows:
            self._ids[(server, model)] = sid
        return dict(rows)

    def _servers(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT server FROM monitor_series ORDER BY server")]

    def _done_until(self, server: str) -> int | None:
        if server not in self._done:
            row = self.conn.execute("SELECT done_until FROM monitor_rollup WHERE server = ?", (server,)).fetchone()
            if row is None:
                return None
            self._done[server] = row[0]
        return self._done[server]
