"""Deploy and rollback markers from audit events, and the CSV export of the graphs' data
(app/monitor/markers.py, app/monitor/csv_export.py). Plain pytest: no Qt."""
import csv
import math

import numpy as np

from app.monitor.csv_export import write_csv
from app.monitor.markers import markers_from_events


def test_markers_are_the_deploys_and_rollbacks_that_succeeded():
    events = [{"action": "deploy", "outcome": "ok", "model": "wine", "version": "2.0.0",
               "ts": "2026-01-02T03:04:05.000+00:00"}]
    # the host view names the model
    assert markers_from_events(events, None) == [(1767323045.0, "deploy wine 2.0.0")]

    events = [
        {"action": "rollback", "outcome": "ok", "model": "iris", "version": "0.9.0", "ts": "2026-01-02T03:05:00"},
        {"action": "deploy", "outcome": "failed", "model": "iris", "version": "1.0.1", "ts": "2026-01-02T03:04:30"},
        {"action": "stop", "outcome": "ok", "model": "iris", "version": "1.0.0", "ts": "2026-01-02T03:04:40"},
        {"action": "deploy", "outcome": "ok", "model": "iris", "version": "1.0.0", "ts": "2026-01-02T03:04:05"},
        {"action": "deploy", "outcome": "ok", "model": "wine", "version": "2.0.0", "ts": "2026-01-02T03:04:06"},
        {"action": "deploy", "outcome": "ok", "model": "iris", "version": "1.0.2", "ts": "not a time"},
    ]
    assert markers_from_events(events, "iris") == [(1767323045.0, "deploy 1.0.0"), (1767323100.0, "rollback 0.9.0")]


def test_csv_has_a_row_per_timestamp_and_gaps_as_empty_cells(tmp_path):
    path = tmp_path / "data.csv"
    series = {"cpu_percent": (np.array([10.0, 11.0, 12.0]), np.array([1.5, math.nan, 3.25])),
              "rss_bytes": (np.array([11.0, 13.0]), np.array([8e7, 9e7]))}
    assert write_csv(path, series) == 4
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["time", "unix_ts", "cpu_percent", "rss_bytes"]
    assert table[1] == ["1970-01-01T00:00:10.000+00:00", "10.000", "1.5", ""]
    assert table[2][1:] == ["11.000", "", "8e+07"]  # NaN: a gap
    assert [r[1] for r in table[1:]] == ["10.000", "11.000", "12.000", "13.000"]
    assert table[4][2:] == ["", "9e+07"]
