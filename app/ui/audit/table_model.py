"""The Audit view's table model: a window onto a log of any length, never all of it in memory.

rowCount is the filter's total; rows come in pages of PAGE when the view first paints them,
fetched off the GUI thread by `fetcher(generation, pages)` and handed back through `put_pages`.
At most CACHE_PAGES pages are kept (least recently painted dropped first). Requests are coalesced
after each paint and only the most recently painted pages are asked for, so dragging the scrollbar
from top to bottom fetches what is on screen when it stops, not everything it passed over."""
from collections import OrderedDict

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer
from PySide6.QtGui import QColor

from app.audit import query
from app.audit.cells import COLUMNS, KEYS, cell, local_time
from app.audit.log import STARTED
from app.deploy.audited import LOST

__all__ = ["AuditModel", "COLUMNS", "PAGE", "local_time"]

PAGE = 200
CACHE_PAGES = 32
BATCH = 3  # pages per fetch: what one screen can show, plus one
PENDING = "…"
FAILED = QColor("#b3261e")
INTERRUPTED = QColor("#b26a00")
DISPLAY, FOREGROUND, TOOLTIP, USER = range(4)
_ROLES = {Qt.ItemDataRole.DisplayRole: DISPLAY, Qt.ItemDataRole.ForegroundRole: FOREGROUND,
          Qt.ItemDataRole.ToolTipRole: TOOLTIP, Qt.ItemDataRole.UserRole: USER}
DONE_STARTED = QColor("#808080")  # the first half of an action whose outcome was recorded: less to read
_STATE_COLORS = {"failed": FAILED, query.INTERRUPTED: INTERRUPTED, LOST: INTERRUPTED, STARTED: DONE_STARTED}
_COLORED = {KEYS.index("outcome"), KEYS.index("action")}
LOST_TIP = ("the connection broke while the server was working: the server finished or undid the change by "
            "itself, and its journal's outcome appears here after the next refresh")
INTERRUPTED_TIP = ("started, never finished: Berth stopped or lost the connection before the outcome was "
                   "recorded")


class AuditModel(QAbstractTableModel):
    """Rows newest first, fetched a page at a time. `seqs` (when known) maps a row to its event's
    seq: a refresh keeps showing the rows it had until their fresh page arrives."""

    def __init__(self, parent=None, page_size: int = PAGE, cache_pages: int = CACHE_PAGES):
        super().__init__(parent)
        self.page_size = page_size
        self.cache_pages = cache_pages
        self.total = 0
        self.seqs = None
        self.pages: OrderedDict[int, list[dict]] = OrderedDict()  # least recently painted first
        self.stale: dict[int, dict] = {}  # seq -> row from before the last refresh
        self.wanted: OrderedDict[int, None] = OrderedDict()
        self.in_flight: set[int] = set()
        self.generation = 0
        self.fetcher = None
        self.requests: list[int] = []  # every page ever asked for (tests and measurements read it)
        self.dispatch_timer = QTimer(self)
        self.dispatch_timer.setSingleShot(True)
        self.dispatch_timer.setInterval(0)
        self.dispatch_timer.timeout.connect(self._dispatch)

    # -- data in ------------------------------------------------------------------------------
    def reset(self, total: int, first_rows: list[dict] = (), seqs=None) -> None:
        """A new filter (or a log that changed other than at the top): everything starts over."""
        self.beginResetModel()
        self._start_over(total, first_rows, seqs, keep=False)
        self.endResetModel()

    def prepend(self, added: int, total: int, first_rows: list[dict], seqs) -> None:
        """`added` new events at the top, the rest unchanged: the selection stays on its event."""
        if added:
            self.beginInsertRows(QModelIndex(), 0, added - 1)
        self._start_over(total, first_rows, seqs, keep=True)
        if added:
            self.endInsertRows()
        if self.total:
            self.dataChanged.emit(self.index(0, 0), self.index(self.total - 1, len(COLUMNS) - 1))

    def set_seqs(self, seqs) -> bool:
        """The seq list arrived; False when it no longer matches the total (the log grew meanwhile)."""
        if len(seqs) != self.total:
            return False
        self.seqs = seqs
        return True

    def put_pages(self, generation: int, pages: dict) -> None:
        if generation != self.generation:
            return  # asked before a reset: its rows are at other positions now
        self.in_flight.difference_update(pages)
        for number, rows in pages.items():
            self.pages[number] = rows
            self.pages.move_to_end(number)
            first = number * self.page_size
            last = min(self.total, first + self.page_size) - 1
            if last >= first:
                self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))
        while len(self.pages) > self.cache_pages:
            self.pages.popitem(last=False)
        if self.wanted:
            self.dispatch_timer.start()

    def fetch_failed(self, generation: int) -> None:
        if generation == self.generation:
            self.in_flight.clear()

    def _start_over(self, total, first_rows, seqs, keep: bool) -> None:
        self.stale = {r["seq"]: r for rows in self.pages.values() for r in rows} if keep and seqs is not None else {}
        self.generation += 1
        self.total = total
        self.seqs = seqs
        self.pages.clear()
        self.wanted.clear()
        self.in_flight.clear()
        if first_rows:
            self.pages[0] = list(first_rows)

    # -- rows ---------------------------------------------------------------------------------
    def row_at(self, row: int) -> dict | None:
        """The event at `row`, or None while its page is on its way (asking for it)."""
        if not 0 <= row < self.total:
            return None
        number, within = divmod(row, self.page_size)
        rows = self.pages.get(number)
        if rows is not None:
            self.pages.move_to_end(number)
            return rows[within] if within < len(rows) else None
        self._want(number)
        if self.stale and self.seqs is not None:
            return self.stale.get(self.seqs[row])
        return None

    @property
    def rows(self) -> list[dict]:
        """The rows at hand (the cached pages), top to bottom: never the whole log."""
        return [row for number in sorted(self.pages) for row in self.pages[number]]

    def row_of_seq(self, seq) -> int:
        """The row of event `seq`, or -1 (not in this filter, or the seq list is still loading)."""
        if self.seqs is None or not isinstance(seq, int):
            return -1
        try:
            return self.seqs.index(seq)
        except ValueError:
            return -1

    def _want(self, number: int) -> None:
        if number in self.in_flight:
            return
        self.wanted[number] = None
        self.wanted.move_to_end(number)
        if not self.dispatch_timer.isActive():
            self.dispatch_timer.start()

    def _dispatch(self) -> None:
        if self.in_flight or not self.wanted or self.fetcher is None:
            return  # one fetch at a time; put_pages dispatches what was wanted meanwhile
        batch = [n for n in reversed(self.wanted) if n not in self.pages][:BATCH]
        self.wanted.clear()
        if batch:
            self.in_flight.update(batch)
            self.requests.extend(batch)
            self.fetcher(self.generation, sorted(batch))

    # -- Qt model -----------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self.total

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(COLUMNS):
            return COLUMNS[section][1]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        kind = _ROLES.get(role)  # Qt asks for ~8 roles a cell on every paint: the others end here
        if kind is None or not index.isValid():
            return None
        column = index.column()
        row = self.row_at(index.row())
        if row is None:
            return PENDING if kind == DISPLAY and column == 0 else None
        if kind == DISPLAY:
            shown = row.get("cells")
            return shown[column] if shown is not None else cell(row, KEYS[column])
        if kind == FOREGROUND:
            if column in _COLORED:
                return _STATE_COLORS.get(row.get("state") or row.get("outcome"))
            return None
        if kind == TOOLTIP:
            return self._tooltip(row, KEYS[column])
        return row  # UserRole

    @staticmethod
    def _tooltip(row: dict, key: str):
        if key == "time":
            return f"{row.get('ts', '')} (UTC) · event #{row.get('seq', '?')}"
        if key == "outcome" and row.get("state") == query.INTERRUPTED:
            return INTERRUPTED_TIP
        if key == "outcome" and row.get("state") == LOST:
            return LOST_TIP
        if key == "version" and row.get("sha256"):
            return f"sha256 {row['sha256']}"
        if key in ("detail", "reason"):  # with its line breaks
            return row.get(key) or None
        if key in ("change", "who"):
            return cell(row, key) or None
        return None
