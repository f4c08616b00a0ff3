"""Per-interval traffic figures of one runner from its /metrics: requests/s, errors/s and latency
percentiles over the interval (or since the runner started, when the interval saw no request).
Used by the server-side sampler and by Berth's own sampler for `local`. Stdlib only."""
import time

from .histogram import BUCKETS, counts_from_cumulative, delta, latency_ms, parse_metrics

ENDPOINT = "/predict"


class RunnerMeter:
    """Feed it each read of the runner's /metrics text; it keeps the previous read to subtract."""

    def __init__(self):
        self.previous = None  # (monotonic time, count, errors, per-bucket counts, process start time)

    def read(self, metrics_text, now=None):
        now = time.monotonic() if now is None else now
        parsed = parse_metrics(metrics_text)
        ep = parsed["endpoints"].get(ENDPOINT)
        started = parsed["process"].get("process_start_time_seconds")
        if ep is None:
            count, errors, bounds, counts = 0, 0, None, [0] * (len(BUCKETS) + 1)
        else:
            count, errors, bounds = ep["count"], ep["errors"], ep["bounds"]
            counts = counts_from_cumulative(ep["cumulative"])
        prev = self.previous
        restarted = prev is None or prev[4] != started or count < prev[1]
        self.previous = (now, count, errors, counts, started)
        if prev is None:
            elapsed, new_count, new_errors, interval_counts = 0.0, 0, 0, [0] * len(counts)
        elif restarted:
            elapsed, new_count, new_errors, interval_counts = now - prev[0], count, errors, list(counts)
        else:
            elapsed = now - prev[0]
            new_count, new_errors = count - prev[1], errors - prev[2]
            interval_counts = delta(prev[3], counts)
        figures = {
            "requests_total": count,
            "errors_total": errors,
            "requests_per_s": round(new_count / elapsed, 3) if elapsed > 0 else 0.0,
            "errors_per_s": round(new_errors / elapsed, 3) if elapsed > 0 else 0.0,
            "histogram": interval_counts,
            "latency_ms": None,
        }
        if bounds:
            lat = latency_ms(bounds, interval_counts)
            if lat is not None:
                lat["window"] = "interval"
            else:
                lat = latency_ms(bounds, counts)
                if lat is not None:
                    lat["window"] = "since_start"
            figures["latency_ms"] = lat
        return figures
