"""The overview's table, drawn fast: a QTableView whose viewport is one pixmap holding every visible
cell's sparkline and text, made in numpy-batched passes once per refresh (not per paint and not per
cell), so a repaint is one blit. bench/monitor_gui.py measures it against one PlotWidget per cell.
The model it shows is the overview's OverviewModel (rows, cache, values(), alerts())."""
from __future__ import annotations

import numpy as np
from pyqtgraph.functions import arrayToQPath
from PySide6.QtCore import QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QTableView

from app.monitor.sparkline import decimate, lone_points

ALERT = QColor("#c62828")
ALERT_FILL = QColor(198, 40, 40, 40)
LINE = QColor("#1a73e8")


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
    values in its box; NaN gaps break it, and so does the end of each cell. A value alone between two
    breaks (the latency of the one interval that had requests) is a 2 px dash: a line shows nothing."""
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
        lone = np.flatnonzero(lone_points(ys))
        if len(lone):  # each becomes a 2 px dash around it, inside its cell's box
            xs[lone] = np.clip(xs[lone] - 1, left[seg[lone]], (left + w)[seg[lone]] - 2)
            xs, yv = np.insert(xs, lone + 1, xs[lone] + 2), np.insert(yv, lone + 1, yv[lone])
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

    def visible_rows(self) -> range:
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
        self._draw_rows(painter, self.visible_rows(), key[1][6])
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
        rows = list(self.visible_rows())
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
