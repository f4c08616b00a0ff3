"""The last minutes of each server read back from History in the shape of the live buffer, so a
restarted console shows the previous session's data at once instead of an empty graph."""
from __future__ import annotations

import time

from app.monitor import history as h
from app.monitor.buffer import HOST_METRICS, LIVE_SECONDS, MODEL_METRICS


def default_history():
    """The History of this Berth home, opened in the thread that calls this (SQLite connections stay
    in the thread that opened them)."""
    from app.store import paths

    return h.History(paths.berth_home() / "monitor.sqlite")


def read_recent(history, servers, seconds: float = LIVE_SECONDS, now: float | None = None) -> dict:
    """The last `seconds` of each server from History, as the buffer holds them:
    {server: {(model or None, metric): (ts, values)}} (a model's memory share from its RSS and the
    host's memory total of the newest sample stored)."""
    now = time.time() if now is None else now
    out = {}
    for server in servers:
        latest = history.latest(server)
        if latest is None:
            continue
        end = max(now, float(latest.get("ts") or 0))  # a server clock ahead of ours: its own 5 minutes
        since = end - seconds
        series = {}
        for metric in HOST_METRICS:
            if metric in h.HOST_METRICS:
                series[(None, metric)] = history.series(server, None, metric, since, end, resolution="raw")
        total = float(((latest.get("host") or {}).get("memory") or {}).get("total") or 0)
        for model in history.models(server):
            for metric in MODEL_METRICS:
                if metric in h.MODEL_METRICS:
                    series[(model, metric)] = history.series(server, model, metric, since, end, resolution="raw")
            if total > 0:
                ts, rss = series[(model, "rss_bytes")]
                series[(model, "memory_percent")] = (ts, [v / total * 100 for v in rss])
        series = {k: v for k, v in series.items() if len(v[0])}
        if series:
            out[server] = series
    return out
