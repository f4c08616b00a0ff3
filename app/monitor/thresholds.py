"""When a figure of the fleet overview is in alert: the thresholds, how they are read from and written
to a settings store, and the rule comparing a value with them. No Qt: the console passes its
QSettings' `value` / `setValue`, and anything else (a test, a future CLI) can pass a dict's."""
from __future__ import annotations

import math
from collections.abc import Callable

DEFAULT_THRESHOLDS = {"p95_ms": 200.0, "memory_percent": 90.0, "cpu_percent": 90.0, "errors_per_s": 0.0}
SETTINGS_PREFIX = "monitor/threshold/"


def read_thresholds(value: Callable[[str, float], object]) -> dict[str, float]:
    """Every threshold from `value(key, default)` (QSettings.value's shape); one that is not a number
    (hand-edited settings) falls back to its default instead of breaking the overview."""
    out = {}
    for key, default in DEFAULT_THRESHOLDS.items():
        try:
            out[key] = float(value(SETTINGS_PREFIX + key, default))
        except (TypeError, ValueError):
            out[key] = default
    return out


def write_thresholds(values: dict[str, float], set_value: Callable[[str, float], object]) -> None:
    for key, value in values.items():
        set_value(SETTINGS_PREFIX + key, float(value))


def over_threshold(key: str | None, value: float, thresholds: dict[str, float]) -> bool:
    """A figure is in alert when it has a threshold and is strictly over it; no value (NaN: the model
    is not running, the stream broke) never alerts, so a gap does not look like a problem."""
    return key is not None and not math.isnan(value) and value > thresholds[key]
