"""The fleet at a glance: every server and model as a row, a sparkline (the live 5 minutes) and the
current value of CPU, memory, p95 latency, requests/s and errors/s; a cell turns red when its
threshold is crossed. Thresholds are edited above the table and kept in QSettings. Clicking a row
opens its graphs.

The value cells of the rows on screen (sparkline from the feed's buffer + current value) are drawn
once per refresh into one transparent pixmap (SparkTable.sheet: all sparklines in one numpy pass and
two arrayToQPath paths, NaN gaps break the lines), so a repaint only blits it over the cells'
backgrounds; bench/monitor_gui.py measures it and compares it with one small PlotWidget per cell.
"""
from __future__ import annotations

import math
import time

import numpy as np
from pyqtgraph.functions import arrayToQPath
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QDoubleSpinBox, QHBoxLayout, QHeaderView, QLabel,
                               QStyle, QStyledItemDelegate, QTableView, QVBoxLayout, QWidget)

from app.store.servers import LOCAL

from app.ui.monitor.buffer import LIVE_SECONDS
from app.ui.settings import settings

# column -> (header, metric for a host row, metric for a model row, threshold key)
COLUMNS = [
    ("CPU", "cpu_percent", "cpu_percent", "cpu_percent"),
    ("Memory", "memory_percent", "memory_percent", "memory_percent"),
    ("p95 latency", None, "p95_ms", "p95_ms"),
    ("Requests/s", None, "requests_per_s", None),
    ("Errors/s", None, "errors_per_s", "errors_per_s"),
]
DEFAULT_THRESHOLDS = {"p95_ms": 200.0, "memory_percent": 90.0, "cpu_percent": 90.0, "errors_per_s": 0.0}
THRESHOLD_LABELS = {"p95_ms": ("p95 >", " ms"), "memory_percent": ("memory >", " %"),
                    "cpu_percent": ("CPU >", " %"), "errors_per_s": ("errors/s >", "")}
ROLE_SERIES = Qt.ItemDataRole.UserRole + 10
ROLE_ALERT = Qt.ItemDataRole.UserRole + 11
ROLE_CELL = Qt.ItemDataRole.UserRole + 12  # the whole cell for the delegate, in one call
ALERT = QColor("#c62828")
ALERT_FILL = QColor(198, 40, 40, 40)
LINE = QColor("#1a73e8")


def load_thresholds() -> dict[str, float]:
    s = settings()
    out = {}
    for key, default in DEFAULT_THRESHOLDS.items():
        try:
            out[key] = float(s.value(f"monitor/threshold/{key}", default))
        except (TypeError, ValueError):
            out[key] = default
    return out


def save_thresholds(values: dict[str, float]) -> None:
    s = settings()
    for key, value in values.items():
        s.setValue(f"monitor/threshold/{key}", float(value))
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
        names = sorted(set(servers or ()) | set(self.buffer.latest), key=lambda s: (s != LOCAL, s))
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
                key = COLUMNS[c - 1][3]
                alert = key is not None and not math.isnan(current) and current > self.thresholds[key]
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
                state = self.states.get(server, ("", ""))[0]
                return server if state in ("", "live") else f"{server}  ({state})"
            if role == Qt.ItemDataRole.FontRole and model is None:
                from PySide6.QtGui import QFont
                f = QFont()
                f.setBold(True)
                return f
            if role == Qt.ItemDataRole.ForegroundRole and self.alerts(r):
                return ALERT
            if role == Qt.ItemDataRole.ToolTipRole:
                state, detail = self.states.get(server, ("", ""))
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


class SparklineDelegate(QStyledItemDelegate):
    """The background of a value cell (selected, or red when alerting); its sparkline and its text
    are drawn by the view (SparkTable) for all cells at once."""

    SPARK_W = 90

    PENS = {False: QPen(LINE, 1.0), True: QPen(ALERT, 1.0)}
    ALIGN = int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight)

    @classmethod
    def boxes(cls, cell_rect: QRect) -> tuple[QRect, QRect]:
        """(sparkline box on the left, at most SPARK_W wide; text box on the right) of a cell."""
        rect = cell_rect.adjusted(4, 4, -4, -4)
        w = min(cls.SPARK_W, rect.width() * 9 // 20)
        return QRect(rect.left(), rect.top(), w, rect.height()), rect.adjusted(w + 6, 0, 0, 0)

    def paint(self, painter: QPainter, option, index) -> None:
        if index.column() == 0:
            return super().paint(painter, option, index)
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        else:
            cell = index.model().cache.get((index.row(), index.column()))
            if cell is not None and cell[3]:
                painter.fillRect(option.rect, ALERT_FILL)

    def sizeHint(self, option, index):
        return QSize(self.SPARK_W + 110, 30)


def sparkline_sheet(cells) -> dict[bool, object]:
    """The sparklines of many cells as one path per colour, in one numpy pass: `cells` is
    [(values, QRect box, alert)]; returns {alert: QPainterPath}. Each line goes min to max of its own
    values in its box; NaN gaps break it, and so does the end of each cell."""
    groups: dict[bool, list] = {False: [], True: []}
    for values, box, alert in cells:
        w, h = box.width(), box.height()
        ys = decimate(values, max(2, w))
        if ys is not None:
            groups[alert].append((ys, box.left(), box.top(), w, h))
    out = {}
    for alert, items in groups.items():
        if not items:
            continue
        n = np.array([len(ys) for ys, *_ in items])
        ys = np.concatenate([np.append(ys, np.nan) for ys, *_ in items])  # a NaN after each cell: a break
        starts = np.concatenate([[0], np.cumsum(n + 1)[:-1]])
        lo = np.fmin.reduceat(ys, starts)
        hi = np.fmax.reduceat(ys, starts)
        span = np.where(hi > lo, hi - lo, 1.0)
        left, top, w, h = (np.array([it[k] for it in items], dtype=float) for k in (1, 2, 3, 4))
        seg = np.repeat(np.arange(len(items)), n + 1)
        pos = np.arange(len(ys)) - starts[seg]
        xs = left[seg] + pos * (w / np.maximum(1, n - 1))[seg]
        yv = top[seg] + h[seg] - (ys - lo[seg]) * (h / span)[seg]
        out[alert] = arrayToQPath(xs, yv, connect="finite")
    return out


class SparkTable(QTableView):
    """A QTableView whose viewport is one opaque pixmap: the rows' backgrounds, the first column's
    text and the value cells (sparkline + text) of the rows on screen, drawn in numpy-batched passes.
    A repaint is one blit (~1 ms) instead of a delegate call per cell. A refresh redraws the pixmap
    CHUNK_ROWS rows per event (refresh_sheet), so no event of the GUI thread takes long; a scroll,
    resize or selection redraws it at once (sheet)."""

    TEXT_FLAGS = int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
    CHUNK_ROWS = 7

    def __init__(self, parent=None):
        super().__init__(parent)
        self._sheet_key = None
        self._sheet: QPixmap | None = None
        self._pixmap: QPixmap | None = None
        self._job: tuple | None = None  # (generation, geometry, [row chunks left]) of a refresh being drawn

    def _geometry(self) -> tuple:
        model, vp = self.model(), self.viewport()
        selected = tuple(sorted(i.row() for i in self.selectionModel().selectedRows())) if self.selectionModel() else ()
        return (model.rowCount(), self.horizontalOffset(), self.verticalOffset(), vp.width(), vp.height(),
                tuple(self.columnWidth(c) for c in range(model.columnCount())), selected, vp.devicePixelRatioF())

    def _visible_rows(self) -> range:
        first, last = self.rowAt(0), self.rowAt(self.viewport().height() - 1)
        if first < 0:
            return range(0)
        return range(first, (last if last >= 0 else self.model().rowCount() - 1) + 1)

    def sheet(self) -> QPixmap | None:
        """The whole pixmap, drawn now unless it is up to date."""
        model = self.model()
        key = (getattr(model, "generation", None), self._geometry())
        if key == self._sheet_key:
            return self._sheet
        self._sheet_key, self._sheet, self._job = key, None, None
        vp = self.viewport()
        if vp.width() <= 0 or vp.height() <= 0 or not hasattr(model, "cache"):
            return None
        dpr = vp.devicePixelRatioF()
        pixmap = self._pixmap  # one pixmap, drawn again (not a new 3 MB one a second)
        size = QSize(int(vp.width() * dpr), int(vp.height() * dpr))
        if pixmap is None or pixmap.size() != size:
            pixmap = self._pixmap = QPixmap(size)
            pixmap.setDevicePixelRatio(dpr)
        pixmap.fill(self.palette().color(QPalette.ColorRole.Base))
        painter = QPainter(pixmap)
        self._draw_rows(painter, self._visible_rows(), key[1][6])
        painter.end()
        self._sheet = pixmap
        return pixmap

    def refresh_sheet(self) -> None:
        """The model was refreshed: draw the pixmap again, CHUNK_ROWS rows per event (the rows not
        drawn yet show the previous second meanwhile)."""
        model = self.model()
        geometry = self._geometry()
        if self._sheet is None or self._sheet_key is None or self._sheet_key[1] != geometry:
            self.sheet()
            return
        rows = list(self._visible_rows())
        chunks = [rows[i:i + self.CHUNK_ROWS] for i in range(0, len(rows), self.CHUNK_ROWS)]
        start = self._job is None
        self._job = (model.generation, geometry, chunks)
        if start:
            QTimer.singleShot(0, self, self._next_chunk)

    def _next_chunk(self) -> None:
        job, self._job = self._job, None
        if job is None:
            return
        generation, geometry, chunks = job
        if not self.isVisible():
            return  # drawn again when shown
        if geometry != self._geometry() or self._sheet is None or generation != self.model().generation:
            self.viewport().update()  # changed meanwhile: the next paint draws it all at once
            return
        rows = chunks[0]
        top = self.rowViewportPosition(rows[0])
        bottom = self.rowViewportPosition(rows[-1]) + self.rowHeight(rows[-1])
        painter = QPainter(self._sheet)
        painter.fillRect(0, top, self.viewport().width(), bottom - top, self.palette().color(QPalette.ColorRole.Base))
        self._draw_rows(painter, rows, geometry[6])
        painter.end()
        self.viewport().update(0, top, self.viewport().width(), bottom - top)
        if len(chunks) > 1:
            self._job = (generation, geometry, chunks[1:])
            QTimer.singleShot(0, self, self._next_chunk)
        else:
            self._sheet_key = (generation, geometry)

    def _draw_rows(self, painter: QPainter, rows, selected) -> None:
        model = self.model()
        pal = self.palette()
        width = self.viewport().width()
        ncols = model.columnCount()
        x = [self.columnViewportPosition(c) for c in range(ncols)]
        widths = [self.columnWidth(c) for c in range(ncols)]
        colors = {False: pal.color(QPalette.ColorRole.Text), True: pal.color(QPalette.ColorRole.HighlightedText)}
        font = self.viewport().font()
        bold = QFont(font)
        bold.setBold(True)
        metrics = {False: QFontMetrics(font), True: QFontMetrics(bold)}
        cells, texts, names = [], [], []
        for r in rows:
            y, rh = self.rowViewportPosition(r), self.rowHeight(r)
            sel = r in selected
            if sel:
                painter.fillRect(0, y, width, rh, pal.highlight())
            elif r % 2 and self.alternatingRowColors():
                painter.fillRect(0, y, width, rh, pal.alternateBase())
            host = model.rows[r][1] is None
            box = QRect(x[0] + 4, y, widths[0] - 8, rh)
            text = metrics[host].elidedText(model.data(model.index(r, 0)), Qt.TextElideMode.ElideRight, box.width())
            names.append((box, text, host, ALERT if model.alerts(r) else colors[sel]))
            for c in range(1, ncols):
                cell = model.cache.get((r, c))
                if cell is not None:
                    rect = QRect(x[c], y, widths[c], rh)
                    if cell[3] and not sel:
                        painter.fillRect(rect, ALERT_FILL)
                    spark, text_box = SparklineDelegate.boxes(rect)
                    cells.append((model.values(r, c), spark, cell[3]))
                    texts.append((text_box, cell[4], ALERT if cell[3] else colors[sel], cell[3]))
        for alert, path in sparkline_sheet(cells).items():
            painter.setPen(SparklineDelegate.PENS[alert])  # no antialiasing: 4x cheaper, a 1 px line needs none
            painter.drawPath(path)
        for is_bold in (False, True):
            painter.setFont(bold if is_bold else font)
            for box, text, host, color in names:
                if host == is_bold:
                    painter.setPen(color)
                    painter.drawText(box, self.TEXT_FLAGS, text)
            for box, text, color, alert in texts:
                if alert == is_bold:
                    painter.setPen(color)
                    painter.drawText(box, SparklineDelegate.ALIGN, text)

    def paintEvent(self, event):
        sheet = self._sheet if self._job is not None and self._job[1] == self._geometry() else self.sheet()
        if sheet is None:
            return super().paintEvent(event)
        painter = QPainter(self.viewport())
        painter.setClipRegion(event.region())
        painter.drawPixmap(0, 0, sheet)
        painter.end()


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
        title = QLabel("<b>Fleet monitor</b> — the last 5 minutes. Red when")
        bar.addWidget(title)
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
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)

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

    def refresh(self) -> None:
        t0 = time.perf_counter()
        self.model.refresh(self.feed.streams.keys())
        if self.table.isVisible():  # the visible cells' sparklines and texts, made once per second, not per paint
            self.table.refresh_sheet()
        self.paint_ms.append((time.perf_counter() - t0) * 1000)
        del self.paint_ms[:-200]

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
