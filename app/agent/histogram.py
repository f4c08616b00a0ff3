"""Latency histograms: the runner's fixed buckets, reading them back from Prometheus text, and
percentiles from bucket counts. Shared by the runner, the server-side sampler and Berth itself
(merging 1-minute aggregates), so every percentile in Berth is computed one way. Stdlib only.

Buckets are geometric, four per doubling, from 0.5 ms to 30 s (about 19 % wide): a percentile read
from them is within one bucket width of the true value, whatever the latency scale.
"""
import math
import re

BUCKETS = tuple(round(0.0005 * 2 ** (i / 4), 7) for i in range(64) if 0.0005 * 2 ** (i / 4) < 30.0) + (30.0,)

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def bucket_index(seconds):
    """Index of the bucket a duration falls in (the last one, +Inf, for anything over 30 s)."""
    lo, hi = 0, len(BUCKETS)
    while lo < hi:
        mid = (lo + hi) // 2
        if seconds > BUCKETS[mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo


def parse_metrics(text):
    """Prometheus text from a runner's /metrics -> {"endpoints": {ep: {"count", "errors", "sum",
    "bounds": [le...], "cumulative": [n...]}}, "process": {name: value}}."""
    endpoints, process = {}, {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), dict(_LABEL.findall(m.group(2) or "")), m.group(3)
        try:
            number = float(value)
        except ValueError:
            continue
        if name.startswith("process_"):
            process[name] = number
            continue
        ep = labels.get("endpoint")
        if ep is None:
            continue
        e = endpoints.setdefault(ep, {"count": 0, "errors": 0, "sum": 0.0, "bounds": [], "cumulative": []})
        if name == "berth_requests_total":
            e["count"] = int(number)
        elif name == "berth_request_errors_total":
            e["errors"] = int(number)
        elif name == "berth_request_duration_seconds_sum":
            e["sum"] = number
        elif name == "berth_request_duration_seconds_bucket":
            le = labels.get("le", "+Inf")
            e["bounds"].append(math.inf if le == "+Inf" else float(le))
            e["cumulative"].append(int(number))
    return {"endpoints": endpoints, "process": process}


def counts_from_cumulative(cumulative):
    """Per-bucket counts from Prometheus' cumulative ones."""
    out, before = [], 0
    for n in cumulative:
        out.append(max(0, n - before))
        before = n
    return out


def delta(previous, current):
    """Per-bucket counts observed between two reads of the same runner (a restart resets: then the
    current counts are all new)."""
    if previous is None or len(previous) != len(current) or any(c < p for p, c in zip(previous, current)):
        return list(current)
    return [c - p for p, c in zip(previous, current)]


def merge(*count_lists):
    """Sum of several per-bucket count lists of the same buckets."""
    lists = [c for c in count_lists if c]
    if not lists:
        return []
    return [sum(col) for col in zip(*lists)]


def percentile(bounds, counts, q):
    """The q-quantile (0 < q <= 1), in seconds, from per-bucket counts, interpolating linearly within
    the bucket it falls in; None when there are no observations. In the first bucket the answer is
    its bound (0.5 ms reads "at most 0.5 ms"); past the last, 30 s reads "at least 30 s"."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            upper = bounds[i]
            if i == 0:  # under the first bound we only know "at most 0.5 ms": never invent a smaller value
                return upper
            lower = bounds[i - 1]
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * ((rank - seen) / n)
        seen += n
    return bounds[-2] if math.isinf(bounds[-1]) else bounds[-1]


def latency_ms(bounds, counts):
    """{"p50", "p95", "p99"} in milliseconds (rounded to 0.001), or None when nothing was observed."""
    if not counts or sum(counts) == 0:
        return None
    return {name: round(percentile(bounds, counts, q) * 1000, 3) for name, q in (("p50", 0.5), ("p95", 0.95),
                                                                                 ("p99", 0.99))}
