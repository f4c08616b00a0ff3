"""The router's per-version figures: requests, errors (5xx, or no answer), rejected (4xx: the
runner's input check), a latency histogram (histogram.py's buckets, so p50/p95/p99 are computed
as everywhere in Berth) and, in shadow mode, B's agreement with A. Kept in memory, written to
stats.json twice a second and read back by a restarted router, so the counts go on."""
import json
import math
import os
import threading

from .histogram import BUCKETS, bucket_index, latency_ms

BOUNDS = list(BUCKETS) + [math.inf]
VERSION_KEYS = ("requests", "errors", "rejected")


def empty():
    return {"requests": 0, "errors": 0, "rejected": 0, "counts": [0] * len(BOUNDS)}


def empty_agreement():
    return {"compared": 0, "equal": 0, "numeric": 0, "abs_diff_sum": 0.0, "max_abs_diff": None, "dropped": 0,
            "b_failed": 0}


class Stats:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        saved = _read(path)
        self.sides = {k: _version(saved.get(k)) for k in ("a", "b")}
        self.agreement = dict(empty_agreement(), **(saved.get("agreement") or {}))

    def observe(self, side, seconds, status):
        with self.lock:
            s = self.sides[side]
            s["requests"] += 1
            if status >= 500:
                s["errors"] += 1
            elif status >= 400:
                s["rejected"] += 1
            s["counts"][bucket_index(seconds)] += 1

    def compare(self, a_body, b_body):
        """B's shadow answer against A's: equal JSON, or for numbers their absolute difference."""
        a, b = _json(a_body), _json(b_body)
        diffs = numeric_diffs(a, b)
        with self.lock:
            g = self.agreement
            g["compared"] += 1
            if a == b:
                g["equal"] += 1
            if diffs:
                g["numeric"] += len(diffs)
                g["abs_diff_sum"] += sum(diffs)
                g["max_abs_diff"] = max([g["max_abs_diff"] or 0.0] + diffs)

    def count(self, key):
        with self.lock:
            self.agreement[key] += 1

    def snapshot(self, side):
        with self.lock:
            s = self.sides[side]
            return dict(s, counts=list(s["counts"]))

    def save(self):
        with self.lock:
            data = json.dumps({"a": self.sides["a"], "b": self.sides["b"], "agreement": self.agreement})
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, self.path)


def figures(version, weight, saved):
    """The per-version dict of `experiment status` and of verdict.verdict(a, b) (docs/experiments.md)."""
    s = _version(saved)
    lat = latency_ms(BOUNDS, s["counts"]) or {}
    return {"version": version, "weight": weight, "requests": s["requests"], "errors": s["errors"],
            "rejected": s["rejected"], "p50_ms": lat.get("p50"), "p95_ms": lat.get("p95"), "p99_ms": lat.get("p99"),
            "latency_bounds_s": BUCKETS, "latency_counts": s["counts"]}


def agreement_figures(saved):
    g = dict(empty_agreement(), **(saved or {}))
    return {"compared": g["compared"], "equal_count": g["equal"],
            "equal": round(g["equal"] / g["compared"], 6) if g["compared"] else None,
            "mean_abs_diff": g["abs_diff_sum"] / g["numeric"] if g["numeric"] else None,
            "max_abs_diff": g["max_abs_diff"], "dropped": g["dropped"], "b_failed": g["b_failed"]}


def numeric_diffs(a, b):
    """[|a-b|] over the numbers of two outputs of the same shape (a number, a list of numbers, or
    a dict of them); None when they are not numbers of one shape (then equality is the measure)."""
    if _number(a) and _number(b):
        return [abs(float(a) - float(b))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a:
        parts = [numeric_diffs(x, y) for x, y in zip(a, b)]
    elif isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and a:
        parts = [numeric_diffs(a[k], b[k]) for k in a]
    else:
        return None
    if any(p is None for p in parts):
        return None
    return [d for p in parts for d in p]


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _json(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _read(path):
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _version(saved):
    out = empty()
    if isinstance(saved, dict):
        for k in VERSION_KEYS:
            if isinstance(saved.get(k), int):
                out[k] = saved[k]
        if isinstance(saved.get("counts"), list) and len(saved["counts"]) == len(BOUNDS):
            out["counts"] = [int(n) for n in saved["counts"]]
    return out
