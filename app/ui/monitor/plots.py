"""The plots of the graphs page: which figures each shows, and how a stack of pyqtgraph plots on one
time axis is built and kept cheap to repaint (every choice here was measured by bench/monitor_gui.py)."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem

from app.monitor.sparkline import lone_points

# (title, unit for the axis, [(metric, legend)])
MODEL_PLOTS = [
    ("CPU (% of one core)", "%", [("cpu_percent", "CPU %")]),
    ("Memory (RSS, MB)", "B", [("rss_bytes", "RSS")]),
    ("Latency (ms)", "ms", [("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")]),
    ("Requests and errors (per second)", "/s", [("requests_per_s", "requests/s"), ("errors_per_s", "errors/s")]),
]
HOST_PLOTS = [
    ("CPU (% of all cores)", "%", [("cpu_percent", "CPU %")]),
    ("Memory (% used)", "%", [("memory_percent", "used %")]),
    ("Load", "", [("load1", "load 1 min")]),
    ("Disk (% used)", "%", [("disk_used_percent", "used %")]),
]
COLORS = ["#1a73e8", "#e8710a", "#c62828", "#2e7d32"]


def fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "B":
        return f"{value / 1e6:.1f} MB"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "/s":
        return f"{value:.2f}/s"
    return f"{value:.2f}"


def build_plots(graphics: pg.GraphicsLayoutWidget, spec, foreground, base) -> tuple[list, dict]:
    """The plots of `spec` in `graphics` (cleared first), x-linked, one time axis under the last;
    each plot carries hover_line, hover_text, series and y_range. Returns (plots, {metric: (curve,
    unit, legend)}). `foreground` is the text colour, `base` the background's (QColor)."""
    graphics.clear()
    plots, curves = [], {}
    pen_fg = pg.mkPen(foreground)
    first = None
    for row, (title, unit, series) in enumerate(spec):
        plot = graphics.addPlot(row=row, col=0, axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        plot.setTitle(title, color=foreground.name(), size="10pt")
        # no grid: its alpha-blended lines tripled the repaint time (bench/monitor_gui.py)
        plot.setMouseEnabled(x=False, y=False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.getAxis("left").setWidth(64)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setPen(pen_fg)
            plot.getAxis(axis).setTextPen(pen_fg)
        if unit in ("B",):
            plot.setLabel("left", units="B")
        # the y range is set by redraw(), with some headroom, and changed only when the data leaves it
        # or uses little of it: pyqtgraph's auto range would move it (and redraw the axis) every second
        plot.disableAutoRange()
        plot.y_range = None
        if len(series) > 1:
            plot.addLegend(offset=(-10, 5), labelTextColor=foreground, brush=pg.mkBrush(0, 0, 0, 0),
                           colCount=len(series))
        for i, (metric, legend) in enumerate(series):
            # 1 px: a wider pen goes through Qt's stroker, ~2 ms more per scene paint (bench/monitor_gui.py)
            curve = plot.plot([], [], pen=pg.mkPen(COLORS[i % len(COLORS)], width=1), name=legend,
                              connect="finite")
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
            # a point between two breaks (latency of the one interval of five that had requests) is
            # no line at all: it is drawn as a dot of the curve's colour instead (set_series)
            curve.lone = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(COLORS[i % len(COLORS)]))
            plot.addItem(curve.lone, ignoreBounds=True)
            curves[metric] = (curve, unit, legend)
        line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(foreground, style=Qt.PenStyle.DotLine))
        line.hide()
        plot.addItem(line, ignoreBounds=True)
        fill = QColor(base)
        fill.setAlpha(200)
        text = pg.TextItem(color=foreground, anchor=(0, 1), fill=pg.mkBrush(fill))
        text.hide()
        plot.addItem(text, ignoreBounds=True)
        plot.hover_line, plot.hover_text, plot.series = line, text, [(m, unit, lg) for m, lg in series]
        if first is None:
            first = plot
        else:
            plot.setXLink(first)
        if row < len(spec) - 1:  # one time axis, under the last graph (an axis is the costliest to paint)
            plot.hideAxis("bottom")
        # what stays still while the time axis moves is blitted from a pixmap (made again when it
        # changes): the left axis (a QPicture of lines and texts), the title, the legend
        still = [plot.getAxis("left"), plot.titleLabel] + ([plot.legend] if plot.legend is not None else [])
        for item in still:
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plots.append(plot)
    return plots, curves


def set_series(curve, xs, ys) -> None:
    """Draw (xs, ys) on a curve of build_plots: the line breaks at NaN, and a value alone between
    two breaks, which a line cannot show, is a dot."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    curve.setData(xs, ys, connect="finite")
    lone = lone_points(ys)
    if lone.any() or len(curve.lone.data):  # setData costs ~0.2 ms even when nothing changes
        curve.lone.setData(xs[lone], ys[lone])


def fit_y(plot, arrays, force: bool = False) -> None:
    """The y range around the data drawn, 10 % of headroom on each side; the current one is kept
    while the data stays inside it and it is at most twice that (a still axis is not drawn again)."""
    finite = [v for v in (np.asarray(a)[np.isfinite(a)] for a in arrays) if len(v)]
    if not finite:
        return
    lo, hi = min(float(v.min()) for v in finite), max(float(v.max()) for v in finite)
    pad = 0.1 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 0.5)
    fit = (lo - pad, hi + pad)
    current = plot.y_range
    if not force and current is not None and current[0] <= lo and hi <= current[1] \
            and current[1] - current[0] <= 2 * (fit[1] - fit[0]):
        return
    plot.y_range = fit
    plot.setYRange(*fit, padding=0)


def value_at(xs, ys, x: float) -> float:
    """The value of the point nearest to time `x` (NaN when there is none): what hover shows."""
    if xs is None or not len(xs):
        return math.nan
    i = int(np.clip(np.searchsorted(xs, x), 1, len(xs) - 1)) if len(xs) > 1 else 0
    if len(xs) > 1 and abs(xs[i - 1] - x) < abs(xs[i] - x):
        i -= 1
    return float(ys[i])
