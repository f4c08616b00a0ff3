"""The overview's alert rule and where its thresholds are kept (app/monitor/thresholds.py), with a
dict standing in for QSettings. Plain pytest: no Qt."""
import math

from app.monitor.thresholds import DEFAULT_THRESHOLDS, over_threshold, read_thresholds, write_thresholds


def test_thresholds_round_trip_through_a_store_and_bad_values_fall_back():
    store = {}
    assert read_thresholds(store.get) == DEFAULT_THRESHOLDS
    write_thresholds(dict(DEFAULT_THRESHOLDS, p95_ms=500), store.__setitem__)
    assert store["monitor/threshold/p95_ms"] == 500.0
    store["monitor/threshold/cpu_percent"] = "not a number"  # a hand-edited settings file
    store["monitor/threshold/memory_percent"] = "75"  # QSettings gives strings back from INI files
    got = read_thresholds(store.get)
    assert got["p95_ms"] == 500.0 and got["memory_percent"] == 75.0
    assert got["cpu_percent"] == DEFAULT_THRESHOLDS["cpu_percent"]


def test_a_value_alerts_only_strictly_over_its_threshold():
    t = dict(DEFAULT_THRESHOLDS)
    assert over_threshold("p95_ms", 350.0, t) and not over_threshold("p95_ms", 200.0, t)
    assert over_threshold("errors_per_s", 0.5, t) and not over_threshold("errors_per_s", 0.0, t)
    assert not over_threshold("cpu_percent", math.nan, t)  # no value (a gap) is not an alert
    assert not over_threshold(None, 1e9, t)  # requests/s has no threshold
