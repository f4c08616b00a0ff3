"""The data of the graphs as one CSV file, readable by a spreadsheet or pandas without Berth."""
from __future__ import annotations

import csv
import math
from datetime import datetime, timezone

import numpy as np


def write_csv(path, series: dict[str, tuple[np.ndarray, np.ndarray]]) -> int:
    """Write `series` ({column: (timestamps, values)}) as one CSV: time (ISO, UTC), unix_ts, a column per
    series; rows are the union of the timestamps, a missing or NaN value is an empty cell (a gap).
    Returns the number of data rows."""
    columns = list(series)
    stamps = sorted({float(t) for ts, _ in series.values() for t in ts if not math.isnan(t)})
    lookup = []
    for name in columns:
        ts, values = series[name]
        lookup.append({float(t): float(v) for t, v in zip(ts, values) if not math.isnan(t)})
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["time", "unix_ts"] + columns)
        for t in stamps:
            row = [datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds"), f"{t:.3f}"]
            for d in lookup:
                v = d.get(t, math.nan)
                row.append("" if math.isnan(v) else f"{v:.6g}")
            out.writerow(row)
    return len(stamps)
