"""Does B do better than A? A verdict only when the data supports it (docs/experiments.md, "Statistics").

Each version is a dict {"version", "requests", "errors", "rejected", "latencies_ms": [a sample of
per-request latencies], "labelled", "correct"} (labels) or {..., "abs_errors": [...]} (numbers).
Three comparisons, each a confidence interval on B minus A: the error rate and the accuracy by
Newcombe's hybrid score interval (Wilson intervals of each side combined), the MAE by Welch's
normal interval, the p95 latency by distribution-free order-statistic intervals of each side. The
family is Bonferroni-corrected (alpha / number of comparisons), so two identical versions are called
"better" or "worse" at most `alpha` of the time. Stdlib only: it runs in the agent (Python 3.8).
"""
import math
from statistics import NormalDist

ALPHA = 0.05
POWER = 0.8
MIN_LATENCIES = 20  # below this no order-statistic interval of the p95 exists at any useful level
MIN_MAE_LABELS = 30  # per side: below this Welch's normal interval is not fair (two equal errors: zero width)
_Z = NormalDist().inv_cdf


def wilson(k, n, alpha=ALPHA):
    """Wilson score interval for k successes in n (Wilson 1927; Newcombe 1998a, method 3)."""
    if n <= 0:
        return (0.0, 1.0)
    z = _Z(1 - alpha / 2)
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, mid - half), min(1.0, mid + half))


def newcombe(k1, n1, k2, n2, alpha=ALPHA):
    """Interval for p2 - p1 (Newcombe 1998b, method 10: the hybrid score interval without continuity
    correction); good coverage at small counts and at 0 %, where the Wald interval collapses."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, alpha)
    l2, u2 = wilson(k2, n2, alpha)
    d = p2 - p1
    lo = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    hi = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return (lo, hi)


def welch(xs, ys, alpha=ALPHA):
    """Normal interval for mean(ys) - mean(xs) with each side's own variance (Welch)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    vx = sum((x - mx) ** 2 for x in xs) / (len(xs) - 1)
    vy = sum((y - my) ** 2 for y in ys) / (len(ys) - 1)
    half = _Z(1 - alpha / 2) * math.sqrt(vx / len(xs) + vy / len(ys))
    return (my - mx - half, my - mx + half)


def quantile_interval(sample, q=0.95, alpha=ALPHA):
    """Distribution-free interval for the q-quantile: order statistics x(j) <= x(k) with
    P(j <= Binomial(n, q) < k) >= 1 - alpha (Conover, Practical Nonparametric Statistics, 3.2);
    None when the sample is too small for one."""
    xs = sorted(sample)
    n = len(xs)
    if n < MIN_LATENCIES:
        return None
    cdf = _binomial_cdf(n, q)
    j = max((i for i in range(n + 1) if cdf[i] <= alpha / 2), default=None)
    k = min((i for i in range(n + 1) if cdf[i] >= 1 - alpha / 2), default=None)
    if j is None or k is None or k >= n:
        return None
    # cdf[i] = P(B <= i): P(x(j+1) <= quantile < x(k+1)) = cdf[k] - cdf[j] (1-based order statistics)
    return (xs[j], xs[k])


def _binomial_cdf(n, p):
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
            for i in range(n + 1)]
    out, total = [], 0.0
    for v in logs:
        total += math.exp(v)
        out.append(min(total, 1.0))
    return out


def percentile(sample, q):
    """Nearest-rank percentile (the one the runner's own figures use for a sample)."""
    xs = sorted(sample)
    return xs[max(0, math.ceil(q * len(xs)) - 1)] if xs else None


def needed_per_side(p1, p2, alpha=ALPHA, power=POWER):
    """Requests per version for a two-sided test of p1 vs p2 to have `power` (Fleiss 1981, without
    continuity correction), assuming the observed rates are the true ones; None when they are equal."""
    if p1 == p2:
        return None
    za, zb = _Z(1 - alpha / 2), _Z(power)
    pbar = (p1 + p2) / 2
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return int(math.ceil(num * num / (p1 - p2) ** 2))


def verdict(a, b, alpha=ALPHA):
    """{"text", "state": better|worse|none, "metrics": {...}, "requests_needed", "needed_for"}."""
    metrics = {}
    plans = [("error_rate", _proportion(a, b, "errors", "requests", lower_is_better=True))]
    if a.get("labelled") and b.get("labelled") and "correct" in a and "correct" in b:
        plans.append(("accuracy", _proportion(a, b, "correct", "labelled", lower_is_better=False)))
    if len(a.get("abs_errors") or ()) >= 2 and len(b.get("abs_errors") or ()) >= 2:
        plans.append(("mae", _mae(a, b)))
    if len(a.get("latencies_ms") or ()) >= MIN_LATENCIES and len(b.get("latencies_ms") or ()) >= MIN_LATENCIES:
        plans.append(("p95_ms", _p95(a, b)))
    plans = [(name, plan) for name, plan in plans if plan is not None]
    level = alpha / max(1, len(plans))
    for name, plan in plans:
        metrics[name] = plan(level)
    calls = [m["call"] for m in metrics.values()]
    state = "worse" if "worse" in calls else "better" if "better" in calls else "none"
    needed, needed_for = _still_needed(a, b, metrics, level)
    text = {"better": "B is better", "worse": "B is worse"}.get(state, "no difference yet")
    if state == "none" and needed:
        text += " (about %d more requests at the current traffic)" % needed
    return {"text": text, "state": state, "confidence": 1 - alpha, "per_metric_alpha": level,
            "metrics": metrics, "requests_needed": needed, "needed_for": needed_for}


def _call(lo, hi, lower_is_better):
    if lo > 0:
        return "worse" if lower_is_better else "better"
    if hi < 0:
        return "better" if lower_is_better else "worse"
    return None


def _proportion(a, b, k, n, lower_is_better):
    n1, n2 = int(a.get(n) or 0), int(b.get(n) or 0)
    if n1 <= 0 or n2 <= 0:
        return None
    k1, k2 = int(a.get(k) or 0), int(b.get(k) or 0)

    def plan(level):
        lo, hi = newcombe(k1, n1, k2, n2, level)
        return {"a": k1 / n1, "b": k2 / n2, "diff": k2 / n2 - k1 / n1, "ci": [lo, hi],
                "n": [n1, n2], "call": _call(lo, hi, lower_is_better)}
    return plan


def _mae(a, b):
    xs, ys = a["abs_errors"], b["abs_errors"]

    def plan(level):
        ma, mb = sum(xs) / len(xs), sum(ys) / len(ys)
        out = {"a": ma, "b": mb, "diff": mb - ma, "ci": None, "n": [len(xs), len(ys)], "call": None}
        if min(len(xs), len(ys)) >= MIN_MAE_LABELS:
            lo, hi = welch(xs, ys, level)
            out["ci"], out["call"] = [lo, hi], _call(lo, hi, lower_is_better=True)
        return out
    return plan


def _p95(a, b):
    xs, ys = a["latencies_ms"], b["latencies_ms"]

    def plan(level):
        # each side at level/2: both intervals hold together with probability >= 1 - level (Bonferroni)
        ia, ib = quantile_interval(xs, 0.95, level / 2), quantile_interval(ys, 0.95, level / 2)
        pa, pb = percentile(xs, 0.95), percentile(ys, 0.95)
        out = {"a": pa, "b": pb, "diff": pb - pa, "ci": None, "n": [len(xs), len(ys)], "call": None}
        if ia and ib:
            lo, hi = ib[0] - ia[1], ib[1] - ia[0]
            out["ci"], out["call"] = [lo, hi], _call(lo, hi, lower_is_better=True)
        return out
    return plan


def _still_needed(a, b, metrics, level):
    """When nothing is decided: total requests still to come, at the current split between A and B,
    until the first proportion metric's observed difference would be detected with POWER."""
    if any(m["call"] for m in metrics.values()):
        return None, None
    best = None
    for name in ("accuracy", "error_rate"):
        m = metrics.get(name)
        if not m:
            continue
        per_side = needed_per_side(m["a"], m["b"], level)
        if per_side is None:
            continue
        n1, n2 = m["n"]
        ra, rb = int(a.get("requests") or 0), int(b.get("requests") or 0)
        share_a, share_b = ra / max(1, ra + rb), rb / max(1, ra + rb)
        if not share_a or not share_b:
            continue
        # labelled counts grow like requests times the labelled fraction of each side
        frac_a, frac_b = n1 / max(1, ra), n2 / max(1, rb)
        more = max(max(0, per_side - n1) / (share_a * frac_a), max(0, per_side - n2) / (share_b * frac_b))
        more = int(math.ceil(more))
        if best is None or more < best[0]:
            best = (more, name)
    return best if best else (None, None)
