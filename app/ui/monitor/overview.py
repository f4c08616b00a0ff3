"""The fleet at a glance: every server and model as a row, a sparkline (the live 5 minutes) and the
current value of CPU, memory, p95 latency, requests/s and errors/s; a cell turns red when its
threshold is crossed. Thresholds are edited above the table and kept in QSettings. Clicking a row
opens its graphs.

The model reads the feed's buffer once per refresh and decides each cell's alert with
app/monitor/thresholds.py; the table (sparktable.py) draws the rows on screen in one pixmap.
"""
from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDoubleSpinBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QVBoxLayout, QWidget)

from app.formatting import natural_key
from app.monitor.buffer import LIVE_SECONDS
from app.monitor.thresholds import DEFAULT_THRESHOLDS, over_threshold, read_thresholds, write_thresholds
from app.store.servers import LOCAL
from app.ui.servers.fleet import NOT_ANSWERING
from app.ui.servers.fleet_filter import matches
from app.ui.monitor.sparktable import ALERT, SparklineDelegate, SparkTable
from app.ui.settings import settings

# column -> (header, metric for a host row, metric for a model row, threshold key)
COLUMNS = [
    ("CPU", "cpu_percent", "cpu_percent", "cpu_percent"),
    ("Memory", "memory_percent", "memory_percent", "memory_percent"),
    ("p95 latency", None, "p95_ms", "p95_ms"),
    ("Requests/s", None, "requests_per_s", None),
    ("Errors/s", None, "errors_per_s", "errors_per_s"),
]
THRESHOLD_LABELS = {"p95_ms": ("p95 >", " ms"), "memory_percent": ("memory >", " %"),
                    "cpu_percent": ("CPU >", " %"), "errors_per_s": ("errors/s >", "")}
ROLE_SERIES = Qt.ItemDataRole.UserRole + 10
ROLE_ALERT = Qt.ItemDataRole.UserRole + 11
ROLE_CELL = Qt.ItemDataRole.UserRole + 12  # the whole cell for the delegate, in one call


def load_thresholds() -> dict[str, float]:
    """The thresholds kept in this user's QSettings (app/monitor/thresholds.py reads them)."""
    return read_thresholds(settings().value)


def save_thresholds(values: dict[str, float]) -> None:
    s = settings()
    write_thresholds(values, s.setValue)
    s.sync()


def value_text(metric: str, value: float, row_model: str | None, feed_buffer=None, server: str = "") -> str:
    if value is None or math.isnan(value):
        return "—"
    if metric == "cpu_percent" or metric == "memory_percent":
        if metric == "memory_percent" and row_model is not None and feed_buffer is not None:
            rss = feed_buffer.current(server, row_model, "rss_bytes")
            if not math.isnan(rss):  # the share of the host's memory is what the threshold compares
                return f"{rss / 1e6:.0f} MB"
        return f"{value:.1f} %"
    if metric == "p95_ms":
        return f"{value:.1f} ms"
    return f"{value:.2f}"


class OverviewModel(QAbstractTableModel):
    def __init__(self, buffer, parent=None, states: dict | None = None):
        super().__init__(parent)
        self.buffer = buffer
        self.states = states if states is not None else {}  # server -> (stream state, detail): the feed's
        self.rows: list[tuple[str, str | None]] = []
        self.stalled: dict[str, float] = {}  # server -> since when its status call is unanswered (main window's)
        self.environments: dict[str, str] = {}  # server -> environment, for the filter's env:X
        self.filter_text = ""
        self.thresholds = load_thresholds()
        self.cache: dict[tuple[int, int], list] = {}  # (row, col) -> [ts, values, current, alert, text, since]
        self.generation = 0  # +1 at each refresh: the view's sparklines are made again

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(COLUMNS) + 1

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return "Server / model" if section == 0 else COLUMNS[section - 1][0]
        return None

    def target(self, row: int) -> tuple[str, str | None]:
        return self.rows[row]

    def metric(self, row: int, col: int) -> str | None:
        _server, model = self.rows[row]
        _h, host_metric, model_metric, _t = COLUMNS[col - 1]
        return model_metric if model is not None else host_metric

    def refresh(self, servers=None) -> None:
        """Read the buffer again: rows (servers, then their models) and the cells' values."""
        names = sorted((s for s in set(servers or ()) | set(self.buffer.latest)
                        if matches(self.filter_text, s, "" if s == LOCAL else self.environments.get(s, ""))),
                       key=lambda s: (s != LOCAL, natural_key(s)))
        rows = []
        for server in names:
            rows.append((server, None))
            rows.extend((server, m) for m in sorted(self.buffer.models.get(server, ())))
        if rows != self.rows:
            self.beginResetModel()
            self.rows = rows
            self.endResetModel()
        now = time.time()
        since = now - LIVE_SECONDS
        cache = {}
        for r, (server, model) in enumerate(self.rows):
            latest = self.buffer.last_ts.get(server)
            since_s = max(since, latest - LIVE_SECONDS) if latest else since  # a clock ahead of ours: its 5 min
            for c in range(1, len(COLUMNS) + 1):
                metric = self.metric(r, c)
                if metric is None:
                    continue
                current = self.buffer.current(server, model, metric)
                alert = over_threshold(COLUMNS[c - 1][3], current, self.thresholds)
                text = value_text(metric, current, model, self.buffer, server)
                cache[(r, c)] = [None, None, current, alert, text, since_s]  # series read when drawn: values()
        self.cache = cache
        self.generation += 1
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS)))

    def values(self, row: int, col: int) -> np.ndarray:
        """The cell's live series (its sparkline), read from the buffer once per refresh, when needed:
        only the rows on screen are drawn."""
        cell = self.cache[(row, col)]
        if cell[1] is None:
            server, model = self.rows[row]
            cell[0], cell[1] = self.buffer.series(server, model, self.metric(row, col), since=cell[5])
        return cell[1]

    def alerts(self, row: int) -> list[str]:
        return [COLUMNS[c - 1][0] for c in range(1, len(COLUMNS) + 1)
                if self.cache.get((row, c), (0, 0, 0, False))[3]]

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        server, model = self.rows[r]
        if c == 0:
            if role == Qt.ItemDataRole.DisplayRole:
                if model is not None:
                    return f"    {model}"
                if server in self.stalled:
                    return f"{server}  ({NOT_ANSWERING} since {_clock(self.stalled[server])})"
                state = self.states.get(server, ("", ""))[0]
                return server if state in ("", "live") else f"{server}  ({state})"
            if role == Qt.ItemDataRole.FontRole and model is None:
                from PySide6.QtGui import QFont
                f = QFont()
                f.setBold(True)
                return f
            stalled = model is None and server in self.stalled
            if role == Qt.ItemDataRole.ForegroundRole and (self.alerts(r) or stalled):
                return ALERT
            if role == Qt.ItemDataRole.ToolTipRole:
                state, detail = self.states.get(server, ("", ""))
                if model is None and server in self.stalled:
                    return "Its status call is not answered; asked again with growing pauses (F5: now)"
                if model is None and state not in ("", "live"):
                    return f"{state}: {detail}" if detail else state
                alerts = self.alerts(r)
                return ("Over the threshold: " + ", ".join(alerts)) if alerts else "Click to open its graphs"
            return None
        cell = self.cache.get((r, c))
        if cell is None:
            return None
        if role == ROLE_CELL:
            return cell
        ts, values, current, alert = cell[:4]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell[4]
        if role == ROLE_SERIES:
            return self.values(r, c)
        if role == ROLE_ALERT:
            return alert
        if role == Qt.ItemDataRole.ForegroundRole and alert:
            return ALERT
        return None


class FleetOverview(QWidget):
    """Signals:
        open_requested(str server, str model): a row was clicked ("" model: the server's host graphs)
    """

    open_requested = Signal(str, str)

    def __init__(self, feed, parent=None):
        super().__init__(parent)
        self.feed = feed
        self.model = OverviewModel(feed.buffer, self, getattr(feed, "states", None))
        self.paint_ms: list[float] = []
        self.table = SparkTable()
        self.table.setModel(self.model)
        self.table.setItemDelegate(SparklineDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(30)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().resizeSection(0, 180)
        self.table.clicked.connect(self._on_clicked)

        self.spins: dict[str, QDoubleSpinBox] = {}
        bar = QHBoxLayout()
        title = QLabel("<b>Fleet monitor</b> — the last 5 minutes. Red when:")  # its own line: the page stays narrow
        for key in DEFAULT_THRESHOLDS:
            label, suffix = THRESHOLD_LABELS[key]
            spin = QDoubleSpinBox()
            spin.setObjectName(f"threshold_{key}")
            spin.setRange(0, 1e6)
            spin.setDecimals(1 if key != "errors_per_s" else 2)
            spin.setSuffix(suffix)
            spin.setValue(self.model.thresholds[key])
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, k=key: self.set_threshold(k, v))
            bar.addWidget(QLabel(label))
            bar.addWidget(spin)
            self.spins[key] = spin
        bar.addStretch(1)
        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("overviewFilter")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setPlaceholderText("Filter: name, s1*, env:production")
        self.filter_edit.setMinimumWidth(180)
        self.filter_edit.textChanged.connect(self._filter_changed)
        bar.addWidget(self.filter_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        self.rate_note = QLabel(self._rate_text())
        self.rate_note.setObjectName("sampleRateNote")
        self.rate_note.setVisible(bool(getattr(feed, "background_interval", None)))
        layout.addWidget(self.rate_note)

        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        preloaded = getattr(feed, "preloaded", None)
        if preloaded is not None:  # the last minutes read from History: their rows and sparklines at once
            preloaded.connect(lambda _servers: self.refresh() if self.isVisible() else None)

    def set_threshold(self, key: str, value: float) -> None:
        self.model.thresholds[key] = float(value)
        if self.spins[key].value() != value:
            self.spins[key].setValue(value)
        save_thresholds(self.model.thresholds)
        self.refresh()

    def set_filter(self, text: str) -> None:
        """The same filter as the fleet tree's (app/ui/servers/fleet_filter.py)."""
        if self.filter_edit.text() != text:
            self.filter_edit.setText(text)

    def set_environments(self, environments: dict[str, str]) -> None:
        self.model.environments = dict(environments)

    def _filter_changed(self, text: str) -> None:
        self.model.filter_text = text.strip()
        self.refresh()

    def _rate_text(self) -> str:
        """The two intervals (the slow one grows with the fleet: MonitorFeed.slow_interval)."""
        slow = getattr(self.feed, "slow_interval", None)
        if not getattr(self.feed, "background_interval", None) or slow is None:
            return ""
        return (f"Servers in view: a sample every {self.feed.interval:g} s; the others every {slow():g} s "
                "(their sparklines show that until they are in view).")

    def refresh(self) -> None:
        t0 = time.perf_counter()
        self.model.refresh(self.feed.streams.keys())
        note = self._rate_text()
        if note != self.rate_note.text():
            self.rate_note.setText(note)
        if self.table.isVisible():  # the visible cells' sparklines and texts, made once per second, not per paint
            self.table.refresh_sheet()
        self.paint_ms.append((time.perf_counter() - t0) * 1000)
        del self.paint_ms[:-200]

    def servers_on_screen(self) -> set[str]:
        """The servers of the rows in view (a model's row names its server)."""
        if not self.table.isVisible():
            return set()
        rows = self.model.rows
        return {rows[r][0] for r in self.table.visible_rows() if r < len(rows)}

    def row_of(self, server: str, model: str | None = None) -> int:
        try:
            return self.model.rows.index((server, model))
        except ValueError:
            return -1

    def _on_clicked(self, index) -> None:
        server, model = self.model.target(index.row())
        self.open_requested.emit(server, model or "")

    def showEvent(self, event):
        self.refresh()
        self.timer.start()
        super().showEvent(event)

    def hideEvent(self, event):
        self.timer.stop()
        super().hideEvent(event)


def _clock(unix: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(unix))
