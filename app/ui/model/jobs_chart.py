"""Rows and errors per run of a job, oldest run left: two bars per run (rows written, error rows),
so a run whose errors grow, or that wrote nothing, shows at a glance."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.ui.monitor.plots import COLORS

ROWS_COLOR, ERRORS_COLOR = COLORS[0], COLORS[2]
WIDTH = 0.38


class RunsChart(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        pal = self.palette()
        fg = pal.color(QPalette.ColorRole.Text)
        self.plot_widget = pg.PlotWidget(background=pal.color(QPalette.ColorRole.Base))
        self.plot_widget.setObjectName("runsChart")
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setTitle(f"<span style='color:{ROWS_COLOR}'>■</span> rows out &nbsp; <span style='color:"
                           f"{ERRORS_COLOR}'>■</span> error rows &nbsp; per run", color=fg.name(), size="10pt")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setPen(pg.mkPen(fg))
            self.plot.getAxis(axis).setTextPen(pg.mkPen(fg))
        self.plot.setLabel("bottom", "run (oldest → newest)", color=fg.name())
        self.rows_bars = pg.BarGraphItem(x=[], height=[], width=WIDTH, brush=ROWS_COLOR, pen=None)
        self.error_bars = pg.BarGraphItem(x=[], height=[], width=WIDTH, brush=ERRORS_COLOR, pen=None)
        self.plot.addItem(self.rows_bars)
        self.plot.addItem(self.error_bars)
        self.rows_out: list[int] = []
        self.errors: list[int] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

    def set_runs(self, runs: list[dict]) -> None:
        """`runs` newest first, as job_runs lists them."""
        ordered = list(reversed(runs))
        self.rows_out = [int(r.get("rows_out") or 0) for r in ordered]
        self.errors = [int(r.get("errors") or 0) for r in ordered]
        xs = list(range(1, len(ordered) + 1))
        self.rows_bars.setOpts(x=[x - WIDTH / 2 for x in xs], height=self.rows_out)
        self.error_bars.setOpts(x=[x + WIDTH / 2 for x in xs], height=self.errors)
        step = max(1, len(xs) // 10)  # whole runs on the axis, at most about ten labels
        self.plot.getAxis("bottom").setTicks([[(x, str(x)) for x in xs[::step]], []])
        top = max(self.rows_out + self.errors + [1])
        self.plot.setXRange(0.4, max(len(xs), 1) + 0.6, padding=0)
        self.plot.setYRange(0, top * 1.15, padding=0)
