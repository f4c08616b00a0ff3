"""The experiment verdict (app/agent/verdict.py): its intervals against published values, and its
calls against many seeded simulations (identical versions are never called apart beyond the
nominal rate; a real difference is found)."""
import math
import random

import pytest

from app.agent.verdict import ALPHA, needed_per_side, newcombe, percentile, quantile_interval, verdict, wilson


# Newcombe, "Two-sided confidence intervals for the single proportion", Stat Med 1998;17:857, Table I (Wilson)
@pytest.mark.parametrize("k,n,lo,hi", [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611)])
def test_wilson_matches_newcombe_table(k, n, lo, hi):
    got = wilson(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


# Newcombe, "Interval estimation for the difference between independent proportions", Stat Med
# 1998;17:873, Table II, method 10 (56/70 - 48/80 and 9/10 - 3/10)
@pytest.mark.parametrize("k1,n1,k2,n2,lo,hi", [(48, 80, 56, 70, 0.0524, 0.3339), (3, 10, 9, 10, 0.1705, 0.8090)])
def test_newcombe_matches_published_intervals(k1, n1, k2, n2, lo, hi):
    got = newcombe(k1, n1, k2, n2)
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


def test_sample_size_matches_fleiss_table():
    # Fleiss, Statistical Methods for Rates and Proportions: 10 % vs 15 %, alpha 0.05, power 0.8 -> 686 per group
    assert needed_per_side(0.10, 0.15) == 686
    assert needed_per_side(0.2, 0.2) is None


def test_quantile_interval_covers_the_true_p95_at_least_nominally():
    rng = random.Random(7)
    covered = 0
    for _ in range(400):
        sample = [rng.random() for _ in range(200)]  # uniform: the true p95 is 0.95
        lo, hi = quantile_interval(sample, 0.95, 0.05)
        covered += lo <= 0.95 <= hi
    assert covered >= 0.95 * 400 - 2 * math.sqrt(400 * 0.05 * 0.95)


def test_quantile_interval_needs_enough_data():
    assert quantile_interval([1.0] * 10) is None
    assert quantile_interval(list(range(100)), 0.95)[1] <= 99


def _version(rng, name, n, error_rate=0.01, accuracy=None, latency=10.0, labelled=0.5):
    errors = sum(rng.random() < error_rate for _ in range(n))
    lat = [rng.expovariate(1 / latency) for _ in range(min(n, 1000))]
    out = {"version": name, "requests": n, "errors": errors, "rejected": 0, "latencies_ms": lat}
    if accuracy is not None:
        out["labelled"] = int(n * labelled)
        out["correct"] = sum(rng.random() < accuracy for _ in range(out["labelled"]))
    return out


def test_identical_versions_are_not_called_apart_beyond_the_nominal_rate():
    calls, seeds = 0, 300
    for seed in range(seeds):
        rng = random.Random(seed)
        a = _version(rng, "1", 800, 0.05, 0.8, 12.0)
        b = _version(rng, "2", 800, 0.05, 0.8, 12.0)
        calls += verdict(a, b)["state"] != "none"
    assert calls <= ALPHA * seeds + 2 * math.sqrt(seeds * ALPHA * (1 - ALPHA))


@pytest.mark.parametrize("change,state,metric", [
    (dict(error_rate=0.06), "worse", "error_rate"),
    (dict(accuracy=0.9), "better", "accuracy"),
    (dict(latency=20.0), "worse", "p95_ms"),
])
def test_a_real_difference_is_found(change, state, metric):
    rng = random.Random(1)
    a = _version(rng, "1", 3000, 0.02, 0.8, 10.0)
    b = _version(rng, "2", 3000, **dict(dict(error_rate=0.02, accuracy=0.8, latency=10.0), **change))
    got = verdict(a, b)
    assert got["state"] == state and got["metrics"][metric]["call"] == state
    assert got["text"] == "B is %s" % state


def test_mae_lower_is_better():
    rng = random.Random(3)
    a = {"version": "1", "requests": 500, "errors": 0, "abs_errors": [abs(rng.gauss(0, 2)) for _ in range(500)]}
    b = {"version": "2", "requests": 500, "errors": 0, "abs_errors": [abs(rng.gauss(0, 1)) for _ in range(500)]}
    got = verdict(a, b)
    assert got["metrics"]["mae"]["call"] == "better" and got["state"] == "better"


def test_too_early_says_how_many_requests_are_still_needed():
    a = {"version": "1", "requests": 100, "errors": 10, "rejected": 0, "latencies_ms": []}
    b = {"version": "2", "requests": 100, "errors": 15, "rejected": 0, "latencies_ms": []}
    got = verdict(a, b)
    assert got["state"] == "none" and got["text"].startswith("no difference yet")
    # 686 per side at alpha 0.05 (only one metric here) minus the 100 each has: 2 * 586 at a 50/50 split
    assert got["requests_needed"] == 2 * (686 - 100) and got["needed_for"] == "error_rate"
    assert "1172 more requests" in got["text"]


def test_no_traffic_gives_no_verdict():
    got = verdict({"version": "1", "requests": 0}, {"version": "2", "requests": 0})
    assert got["state"] == "none" and got["metrics"] == {} and got["requests_needed"] is None


def test_percentile_is_nearest_rank():
    assert percentile(list(range(1, 101)), 0.95) == 95 and percentile([], 0.5) is None
