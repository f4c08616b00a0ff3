"""The graphs of one model or one server: pyqtgraph plots on one linked time axis (plots.py).

Live 5 min comes from the feed's in-memory buffer; 1 h / 24 h / 7 days read History on the task
runner's pool (never the GUI thread). Hover shows the values under the mouse; Pause freezes the view
while data keeps arriving; deploys and rollbacks from the audit log are labelled vertical markers
(app/monitor/markers.py); the visible graphs export as PNG and their data as CSV
(app/monitor/csv_export.py).
"""
from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.monitor.buffer import LIVE_SECONDS
from app.monitor.csv_export import write_csv
from app.monitor.markers import markers_from_events
from app.ui.monitor.label_plot import LabelPlot
from app.ui.monitor.plots import HOST_PLOTS, MODEL_PLOTS, build_plots, fit_y, fmt, set_series, value_at

WINDOWS = [("Live (5 min)", LIVE_SECONDS), ("1 hour", 3600), ("24 hours", 86400), ("7 days", 7 * 86400)]
RELOAD_S = {3600: 10, 86400: 60, 7 * 86400: 300}  # how often a History window is read again


def export_png(widget: QWidget, path) -> bool:
    return widget.grab().save(str(path), "PNG")


_history_local = threading.local()


def _thread_history(factory):
    """One History per pool thread (SQLite connections stay in the thread that opened them)."""
    h = getattr(_history_local, "history", None)
    if h is None:
        h = _history_local.history = factory()
    return h


class MonitorGraphs(QWidget):
    """The graphs of one target: (server, model) or (server, None) for the host.

    Signals:
        back_requested(): the operator wants the fleet overview again
    """

    back_requested = Signal()

    def __init__(self, runner, feed, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.feed = feed
        self.server: str | None = None
        self.model: str | None = None
        self.window_s = LIVE_SECONDS
        self.paused = False
        self.dirty = False
        self.history_data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.history_range: tuple[float, float] | None = None
        self.markers: list[tuple[float, str]] = []
        self._loading = None
        self._marker_items: list = []
        self._last_reload = 0.0
        self.plots: list[pg.PlotItem] = []
        self.curves: dict[str, tuple[pg.PlotDataItem, str, str]] = {}  # metric -> (curve, unit, legend)
        self.paint_ms: list[float] = []  # how long each redraw took (bench)
        self._spec = None  # the plot layout built (MODEL_PLOTS or HOST_PLOTS)

        self.back_button = QPushButton("‹ Fleet")
        self.back_button.clicked.connect(self.back_requested)
        self.title = QLabel()
        self.title.setObjectName("monitorTitle")
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        self.title.setFont(f)
        self.state_label = QLabel()
        self.window_combo = QComboBox()
        for text, seconds in WINDOWS:
            self.window_combo.addItem(text, seconds)
        self.window_combo.currentIndexChanged.connect(lambda _i: self.set_window(self.window_combo.currentData()))
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.png_button = QPushButton("Export PNG…")
        self.png_button.clicked.connect(self.ask_png)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(self.ask_csv)
        bar = QHBoxLayout()
        bar.addWidget(self.back_button)
        bar.addWidget(self.title)
        bar.addWidget(self.state_label)
        bar.addStretch(1)
        for w in (self.window_combo, self.pause_button, self.png_button, self.csv_button):
            bar.addWidget(w)

        pal = self.palette()
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(pal.color(QPalette.ColorRole.Base))
        self.foreground = pal.color(QPalette.ColorRole.Text)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse)
        self.message = QLabel()
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.message)
        layout.addWidget(self.graphics, 1)
        self.labels = LabelPlot(runner, feed)  # accuracy / MAE per version from the labelled requests
        layout.addWidget(self.labels)
        self.message.hide()

        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.tick)
        self._build_plots(MODEL_PLOTS)  # now, not when a model is first opened
        feed.sampled.connect(self._on_sampled)
        feed.stream_state.connect(self._on_stream_state)
        feed.preloaded.connect(self._on_preloaded)

    # -- target ---------------------------------------------------------------------------------
    def show_target(self, server: str, model: str | None) -> None:
        if (server, model) != (self.server, self.model):
            self.server, self.model = server, model
            self.title.setText(f"{model} on {server}" if model else f"{server} (host)")
            self._build_plots(MODEL_PLOTS if model else HOST_PLOTS)
            self.history_data, self.history_range = {}, None
            self.markers = []
            self._on_stream_state(server, *self.feed.states.get(server, ("", "")))
        self.labels.show_target(server, model)
        if self.paused:
            self.pause_button.setChecked(False)
        self.reload_markers()
        if self.window_s != LIVE_SECONDS:
            self.reload_history()
        self.timer.start()
        self.redraw()

    def _build_plots(self, spec) -> None:
        """The plots of `spec`; kept when it is the layout already there (another model, same graphs):
        new items cost ~40 ms to make and their first paint is 2-3 times a usual one."""
        if spec is self._spec:
            self.set_markers([])
            for plot in self.plots:
                plot.y_range = None
                plot.hover_line.hide()
                plot.hover_text.hide()
            return
        self._spec = spec
        self._marker_items = []
        self.plots, self.curves = build_plots(self.graphics, spec, self.foreground,
                                              self.palette().color(QPalette.ColorRole.Base))

    # -- controls -------------------------------------------------------------------------------
    def set_window(self, seconds: int) -> None:
        self.window_s = int(seconds)
        i = self.window_combo.findData(self.window_s)
        if i >= 0 and i != self.window_combo.currentIndex():
            self.window_combo.setCurrentIndex(i)
        self.history_data, self.history_range = {}, None
        if self.window_s != LIVE_SECONDS:
            self.reload_history()
        self.redraw(force=True)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.pause_button.setText("Resume" if paused else "Pause")
        if self.pause_button.isChecked() != paused:
            self.pause_button.setChecked(paused)
        if not paused:  # jump to now
            if self.window_s != LIVE_SECONDS:
                self.reload_history()
            self.redraw(force=True)

    def x_range(self) -> tuple[float, float]:
        return tuple(self.plots[0].vb.viewRange()[0]) if self.plots else (0.0, 0.0)

    # -- data -----------------------------------------------------------------------------------
    def _on_sampled(self, server: str, _sample) -> None:
        if server == self.server:
            self.dirty = True

    def _on_preloaded(self, servers) -> None:
        if self.server in servers and self.window_s == LIVE_SECONDS:
            self.redraw()  # the last minutes from History, at once

    def _on_stream_state(self, server: str, state: str, detail: str) -> None:
        if server != self.server:
            return
        text = {"live": "● live", "reconnecting": "reconnecting…", "unavailable": "no data"}.get(state, state)
        self.state_label.setText(text)
        self.state_label.setToolTip(detail)

    def tick(self) -> None:
        if not self.isVisible() or self.paused:
            return
        reload_every = RELOAD_S.get(self.window_s)
        if reload_every and time.monotonic() - self._last_reload > reload_every:
            self.reload_history()
        self.redraw()

    def series_now(self) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float, float]:
        """What the graphs draw now: {metric: (ts, values)} and the x range."""
        now = time.time()
        last = self.feed.buffer.last_ts.get(self.server)
        if last is not None and last > now:  # a server clock ahead of ours: still show its newest point
            now = last
        start = now - self.window_s
        if self.window_s == LIVE_SECONDS:
            data = {m: self.feed.buffer.series(self.server, self.model, m, since=start) for m in self.curves}
            first = min((ts[0] for ts, _v in data.values() if len(ts)), default=None)
            if first is not None and first - 2 > start:  # less than 5 minutes so far: no empty space on the left
                start = first - 2
        else:
            data = {m: self.history_data.get(m, (np.empty(0), np.empty(0))) for m in self.curves}
        return data, start, now

    def redraw(self, force: bool = False) -> None:
        if not self.plots or (self.paused and not force):
            return
        t0 = time.perf_counter()
        data, start, end = self.series_now()
        for metric, (curve, _unit, _legend) in self.curves.items():
            set_series(curve, *data[metric])
        for plot in self.plots:
            fit_y(plot, [data[m][1] for m, _u, _l in plot.series], force)
        self.plots[0].setXRange(start, end, padding=0)
        self.labels.follow(start, end, self.window_s)
        # pyqtgraph settles the views (auto range, transforms, axes) just before painting, and what that
        # changes asks for a second paint of the whole scene: settle them now, one paint does it all
        self.graphics.scene().prepareForPaint()
        self.dirty = False
        self.paint_ms.append((time.perf_counter() - t0) * 1000)
        del self.paint_ms[:-200]

    def reload_history(self) -> None:
        if self.server is None or self.feed.history_factory is None or self.runner is None:
            return
        if self._loading is not None and not self._loading.done:
            return
        self._last_reload = time.monotonic()
        server, model, window = self.server, self.model, self.window_s
        metrics = list(self.curves)
        factory = self.feed.history_factory
        until = time.time()
        since = until - window

        def work(ctx):
            history = _thread_history(factory)
            out = {}
            for m in metrics:
                ts, values = history.series(server, model, m, since, until)
                out[m] = (np.asarray(ts, dtype=float), np.asarray(values, dtype=float))
            return out

        task = self._loading = self.runner.in_background(f"history {server} {model or ''}", work, owner=self)
        task.finished.connect(lambda r, k=(server, model, window): self._history_loaded(k, r))
        task.failed.connect(lambda e: self._show_message(f"Cannot read the history: {e}"))

    def _history_loaded(self, key, data) -> None:
        if key != (self.server, self.model, self.window_s):
            return
        self.history_data = data
        self.message.hide()
        if not self.paused:
            self.redraw(force=True)

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()

    # -- markers --------------------------------------------------------------------------------
    def reload_markers(self) -> None:
        if self.server is None or self.runner is None:
            return
        server, model = self.server, self.model

        def work(ctx):
            return ctx.workspace.audit.list(limit=2000, server=server, model=model)

        task = self.runner.in_background(f"markers {server}", work, owner=self)
        task.finished.connect(lambda events, k=(server, model): self._markers_loaded(k, events))

    def _markers_loaded(self, key, events) -> None:
        if key != (self.server, self.model):
            return
        self.set_markers(markers_from_events(events, self.model))

    def set_markers(self, markers: list[tuple[float, str]]) -> None:
        for plot, item in self._marker_items:
            plot.removeItem(item)
        self._marker_items = []
        self.markers = list(markers)
        for n, (ts, label) in enumerate(self.markers):
            color = "#c62828" if label.startswith("rollback") else "#8e24aa"
            height = (0.93, 0.78, 0.63)[n % 3]  # staggered: close markers keep readable labels
            for i, plot in enumerate(self.plots):
                line = pg.InfiniteLine(pos=ts, angle=90, movable=False,
                                       pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine),
                                       label=label if i == 0 else None,
                                       labelOpts={"position": height, "color": color, "anchors": [(0, 0.5), (0, 0.5)],
                                                  "fill": pg.mkBrush(self.palette().color(QPalette.ColorRole.Base))})
                plot.addItem(line, ignoreBounds=True)
                self._marker_items.append((plot, line))

    # -- hover ----------------------------------------------------------------------------------
    def _on_mouse(self, pos) -> None:
        x = None
        for plot in self.plots:
            if plot.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                break
        self.hover(x)

    def hover(self, x: float | None) -> dict[str, float]:
        """Show the values at time `x` (None hides the line); returns {metric: value} (tests)."""
        shown = {}
        for n, plot in enumerate(self.plots):
            if x is None:
                plot.hover_line.hide()
                plot.hover_text.hide()
                continue
            lines = [datetime.fromtimestamp(x).strftime("%H:%M:%S")] if n == 0 else []
            for metric, unit, legend in plot.series:
                curve = self.curves[metric][0]
                value = value_at(*curve.getOriginalDataset(), x)
                shown[metric] = value
                lines.append(f"{legend}: {fmt(value, unit)}")
            plot.hover_line.setPos(x)
            plot.hover_line.show()
            (left, right), (bottom, _top) = plot.vb.viewRange()
            plot.hover_text.setText("  ".join(lines))
            plot.hover_text.setAnchor((1, 1) if x > left + (right - left) * 0.6 else (0, 1))  # stay inside
            plot.hover_text.setPos(x, bottom)
            plot.hover_text.show()
        return shown

    # -- export ---------------------------------------------------------------------------------
    def visible_series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The data the graphs show, clipped to the visible time range, named like the legend."""
        lo, hi = self.x_range()
        out = {}
        for metric, (curve, unit, legend) in self.curves.items():
            xs, ys = curve.getOriginalDataset()
            if xs is None:
                xs, ys = np.empty(0), np.empty(0)
            keep = (xs >= lo) & (xs <= hi)
            out[metric] = (np.asarray(xs)[keep], np.asarray(ys)[keep])
        return out

    def default_name(self, ext: str) -> str:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return f"{self.server}-{self.model or 'host'}-{stamp}.{ext}"

    def ask_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the graphs as PNG", self.default_name("png"),
                                              "PNG images (*.png)")
        if path and not export_png(self.graphics, path):
            self._show_message(f"Cannot write {path}")

    def ask_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the visible data as CSV", self.default_name("csv"),
                                              "CSV files (*.csv)")
        if path:
            try:
                write_csv(Path(path), self.visible_series())
            except OSError as e:
                self._show_message(f"Cannot write {path}: {e}")

    def hideEvent(self, event):
        self.timer.stop()
        super().hideEvent(event)

    def showEvent(self, event):
        if self.server is not None:
            self.timer.start()
        super().showEvent(event)
