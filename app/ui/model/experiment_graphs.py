"""Both versions of an experiment on one time axis, with the monitoring graphs' plots (build_plots):
p95 latency, and requests and errors per second, from the experiment's status as the tab reads it
(each reading a point; rates from the change of the counts between two readings)."""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.ui.monitor.plots import build_plots, fit_y, set_series

SPEC = [
    ("p95 latency (ms)", "ms", [("a_p95_ms", "A"), ("b_p95_ms", "B")]),
    ("Requests per second", "/s", [("a_rps", "A"), ("b_rps", "B")]),
    ("Errors per second", "/s", [("a_eps", "A"), ("b_eps", "B")]),
]
KEEP = 2000  # readings kept: at one every 5 s, almost three hours


class ExperimentGraphs(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("experimentGraphs")
        palette = self.palette()
        self.graphics.setBackground(palette.base().color())  # the monitoring graphs' look, not pyqtgraph's black
        self.plots, self.curves = build_plots(self.graphics, SPEC, palette.windowText().color(), palette.base().color())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        self.clear()

    def clear(self) -> None:
        self.times: list[float] = []
        self.series: dict[str, list[float]] = {m: [] for m in self.curves}
        self._last: tuple[float, dict] | None = None
        self.redraw()

    def add(self, status: dict, now: float | None = None) -> None:
        now = time.time() if now is None else now
        counts = {side: (status[side].get("requests") or 0, status[side].get("errors") or 0) for side in ("a", "b")}
        self.times.append(now)
        for side in ("a", "b"):
            p95 = status[side].get("p95_ms")
            self.series[f"{side}_p95_ms"].append(np.nan if p95 is None else float(p95))
            if self._last is None or now <= self._last[0]:
                rps = eps = np.nan
            else:
                dt = now - self._last[0]
                before = self._last[1][side]
                rps = max(0, counts[side][0] - before[0]) / dt
                eps = max(0, counts[side][1] - before[1]) / dt
            self.series[f"{side}_rps"].append(rps)
            self.series[f"{side}_eps"].append(eps)
        self._last = (now, counts)
        if len(self.times) > KEEP:
            self.times = self.times[-KEEP:]
            for k in self.series:
                self.series[k] = self.series[k][-KEEP:]
        self.redraw()

    def redraw(self) -> None:
        xs = np.asarray(self.times, dtype=float)
        for metric, (curve, _unit, _legend) in self.curves.items():
            set_series(curve, xs, self.series.get(metric, []))
        for plot in self.plots:
            fit_y(plot, [np.asarray(self.series[m], dtype=float) for m, _u, _l in plot.series])
        if len(xs):
            span = max(60.0, xs[-1] - xs[0])
            self.plots[0].setXRange(xs[-1] - span, xs[-1], padding=0.02)
