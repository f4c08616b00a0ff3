"""A long series reduced to what a sparkline a few pixels wide can show, keeping its spikes and gaps."""
from __future__ import annotations

import numpy as np


def decimate(values: np.ndarray, width: int) -> np.ndarray | None:
    """At most 2 points per pixel column (each column's min and max, so a spike stays visible); None
    when there is nothing to draw. A column with no value at all stays NaN: the line breaks there."""
    n = len(values)
    if n < 2 or not np.isfinite(values).any():
        return None
    if n <= 4 * width:  # drawing a few hundred points without antialiasing costs less than reducing them
        return values
    m = -(-n // width)  # points per column
    pad = (-n) % m
    v = np.concatenate([np.full(pad, np.nan), values]) if pad else values
    v = v.reshape(-1, m)
    out = np.empty((len(v), 2))
    out[:, 0] = np.fmin.reduce(v, axis=1)
    out[:, 1] = np.fmax.reduce(v, axis=1)
    return out.ravel()


def lone_points(values: np.ndarray) -> np.ndarray:
    """Which values have no finite neighbour on either side (a NaN or the end): a line drawn with
    connect='finite' shows nothing for them, so a model that served requests in one interval of
    five would have an empty latency line. Whoever draws the line marks these apart."""
    finite = np.isfinite(np.asarray(values, dtype=float))
    if not len(finite):
        return finite
    before = np.r_[False, finite[:-1]]
    after = np.r_[finite[1:], False]
    return finite & ~before & ~after
