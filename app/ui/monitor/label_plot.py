"""Live accuracy (labels) or mean absolute error (numbers) per version in a model's monitoring graphs,
under the other graphs on the same time span (docs/experiments.md, "Labels and accuracy").

The points are not samples of the monitor stream: they come from the labelled requests themselves
(the agent's `feedback_figures` with `bucket_s`: the request log joined with the labels by id),
grouped by when each request was answered, so a label that arrives an hour late still lands at its
request's time. They are read on the server's lane every RELOAD_S while the graphs are on screen and
the server's stream is live (an unreachable server is not asked again and again)."""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.deploy.experiments import label_series
from app.ui.monitor.plots import COLORS, fit_y, set_series

RELOAD_S = 15.0
POINTS = 60  # buckets across the window shown: 5 s in the live 5 minutes, 1 min in an hour
TITLE = "Accuracy / mean abs. error per version (labelled requests)"


class LabelPlot(QWidget):
    def __init__(self, runner, feed, parent=None):
        super().__init__(parent)
        self.runner, self.feed = runner, feed
        self.server: str | None = None
        self.model: str | None = None
        self.series: dict[str, dict] = {}  # version -> {"figure", "points"} as the agent gives it
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._asked: tuple | None = None  # (server, model, window) of the last reading asked for
        self._asked_at = 0.0
        self._reading = None
        pal = self.palette()
        self.foreground = pal.color(QPalette.ColorRole.Text)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("labelGraph")
        self.graphics.setBackground(pal.color(QPalette.ColorRole.Base))
        self.plot = self.graphics.addPlot(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.getAxis("left").setWidth(64)  # lined up with the graphs above
        pen = pg.mkPen(self.foreground)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(pen)
            self.plot.getAxis(axis).setTextPen(pen)
        self.plot.disableAutoRange()
        self.plot.y_range = None
        self.plot.addLegend(offset=(-10, 5), labelTextColor=self.foreground, brush=pg.mkBrush(0, 0, 0, 0))
        self._set_title("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        self.setMinimumHeight(120)
        self.setMaximumHeight(190)  # one plot: the four above keep most of the page
        self.hide()  # until a model is shown (a host has no labels)

    def show_target(self, server: str, model: str | None) -> None:
        if (server, model) != (self.server, self.model):
            self.server, self.model = server, model
            self.show_series({})
        self.setVisible(model is not None)

    def follow(self, start: float, end: float, window_s: float) -> None:
        """The graphs above show [start, end] of a `window_s` window: the same span here, and a new
        reading of the window when due (a new target or window at once, else every RELOAD_S)."""
        self.plot.setXRange(start, end, padding=0)
        if self.model is None or not self.isVisible() or self.runner is None:
            return
        key = (self.server, self.model, window_s)
        due = key != self._asked or time.monotonic() - self._asked_at > RELOAD_S
        live = (self.feed.states.get(self.server) or ("",))[0] == "live"
        if due and live and (self._reading is None or self._reading.done):
            self.reload(end - window_s, window_s)

    def reload(self, since: float, window_s: float) -> None:
        server, model = self.server, self.model
        bucket = max(1.0, window_s / POINTS)
        self._asked, self._asked_at = (server, model, window_s), time.monotonic()
        task = self._reading = self.runner.on_server(
            server, f"label figures {model}", lambda ctx: label_series(ctx.transport, model, since, bucket), owner=self)
        task.finished.connect(lambda got, k=(server, model): self._loaded(k, got))
        task.failed.connect(lambda e, k=(server, model): self._failed(k, e))

    def _loaded(self, key, got) -> None:
        if key == (self.server, self.model):
            self.show_series(got)

    def _failed(self, key, error) -> None:
        if key == (self.server, self.model):
            self._set_title(f" — cannot read them: {error}")

    def show_series(self, series: dict) -> None:
        """{version: {"figure": "accuracy"|"mae", "points": [[t, labelled, value], ...]}}: one line each."""
        self.series = {v: s for v, s in series.items() if s.get("points")}
        for version in [v for v in self.curves if v not in self.series]:
            self.plot.removeItem(self.curves[version].lone)
            self.plot.removeItem(self.curves.pop(version))  # and its legend entry
        for version, s in sorted(self.series.items()):
            curve = self.curves.get(version)
            name = f"{version} {'MAE' if s['figure'] == 'mae' else 'accuracy'}"
            if curve is None:
                color = COLORS[len(self.curves) % len(COLORS)]
                curve = self.curves[version] = self.plot.plot([], [], pen=pg.mkPen(color, width=1), name=version,
                                                              connect="finite")
                curve.lone = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(color))
                self.plot.addItem(curve.lone, ignoreBounds=True)
            label = self.plot.legend.getLabel(curve)
            if label is not None:
                label.setText(name)
            xs = np.asarray([p[0] for p in s["points"]], dtype=float)
            ys = np.asarray([p[2] for p in s["points"]], dtype=float)
            set_series(curve, xs, ys)
        if self.series:
            fit_y(self.plot, [self.data(v)[1] for v in self.series], force=True)
            labelled = sum(p[1] for s in self.series.values() for p in s["points"])
            self._set_title(f" — {labelled} labelled in this window")
        else:
            self._set_title(" — none labelled in this window")

    def data(self, version: str) -> tuple[np.ndarray, np.ndarray]:
        """What the version's line draws: (times, values)."""
        xs, ys = self.curves[version].getOriginalDataset()
        return np.asarray(xs if xs is not None else []), np.asarray(ys if ys is not None else [])

    def _set_title(self, extra: str) -> None:
        self.plot.setTitle(TITLE + extra, color=self.foreground.name(), size="10pt")
