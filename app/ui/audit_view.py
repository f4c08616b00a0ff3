"""The Audit view: every event, newest first, filtered by server, model, action and free text.

Reads run off the GUI thread (app/audit/query.py through the task runner); the first 500 rows
load at once, more as the table is scrolled to its end."""
from datetime import datetime

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QTableView, QVBoxLayout, QWidget)

from app.audit.query import AuditFilter, read_page

from .errors import ErrorBanner

PAGE = 500
COLUMNS = (("time", "Time"), ("who", "Who"), ("server", "Server"), ("model", "Model"), ("version", "Version"),
           ("action", "Action"), ("outcome", "Outcome"), ("detail", "Detail"))
FAILED = QColor("#b3261e")


def local_time(ts: str) -> str:
    """An ISO UTC timestamp shown in the computer's own time zone."""
    try:
        return datetime.fromisoformat(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return ts or ""


def who(row: dict) -> str:
    actor, ssh_user = row.get("actor") or "", row.get("ssh_user") or ""
    return f"{actor} (as {ssh_user})" if ssh_user else actor


class AuditModel(QAbstractTableModel):
    """Audit rows, newest first. `fetcher(offset)` (set by the view) asks for the rows after
    `offset`; they come back through `append_rows`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[dict] = []
        self.total = 0
        self.fetcher = None
        self.fetching = False

    # -- data in ------------------------------------------------------------------------------
    def set_rows(self, rows: list[dict], total: int) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.total = max(total, len(self.rows))
        self.fetching = False
        self.endResetModel()

    def append_rows(self, rows: list[dict], total: int) -> None:
        self.fetching = False
        self.total = max(total, len(self.rows) + len(rows))
        if not rows:
            self.total = len(self.rows)
            return
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()

    # -- Qt model -----------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(COLUMNS):
            return COLUMNS[section][1]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not (0 <= index.row() < len(self.rows)) or not (0 <= index.column() < len(COLUMNS)):
            return None
        row = self.rows[index.row()]
        key = COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "time":
                return local_time(row.get("ts", ""))
            if key == "who":
                return who(row)
            if key == "detail":
                return (row.get("detail") or "").replace("\n", " ")
            return row.get(key) or ""
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "time":
                return f"{row.get('ts', '')} (UTC)"
            if key == "detail" and row.get("detail"):
                return row["detail"]
            if key == "version" and row.get("sha256"):
                return f"sha256 {row['sha256']}"
            return None
        if role == Qt.ItemDataRole.ForegroundRole and row.get("outcome") == "failed" and key in ("outcome", "action"):
            return FAILED
        if role == Qt.ItemDataRole.UserRole:
            return row
        return None

    def canFetchMore(self, parent=QModelIndex()) -> bool:
        return not parent.isValid() and self.fetcher is not None and not self.fetching and len(self.rows) < self.total

    def fetchMore(self, parent=QModelIndex()) -> None:
        if self.canFetchMore(parent):
            self.fetching = True
            self.fetcher(len(self.rows))


class AuditPage(QWidget):
    """The audit log with its filters. `refresh()` re-reads it; `focus_filter()` puts the cursor in
    the text filter (the window's Ctrl+F)."""

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.read_task = None  # the latest read; released when it answers (no Task ever outlives its reply)
        self.more_task = None
        self.read_filter = AuditFilter()
        self.generation = 0
        self.loading = False
        layout = QVBoxLayout(self)

        bar = QHBoxLayout()
        title = QLabel("<b>Audit log</b>")
        bar.addWidget(title)
        bar.addSpacing(12)
        self.server_combo = self._combo("serverFilter", "All servers")
        self.model_combo = self._combo("modelFilter", "All models")
        self.action_combo = self._combo("actionFilter", "All actions")
        for combo in (self.server_combo, self.model_combo, self.action_combo):
            bar.addWidget(combo)
        self.text_edit = QLineEdit()
        self.text_edit.setObjectName("textFilter")
        self.text_edit.setPlaceholderText("Filter text (Ctrl+F)")
        self.text_edit.setClearButtonEnabled(True)
        bar.addWidget(self.text_edit, 1)
        self.count_label = QLabel()
        self.count_label.setObjectName("countLabel")
        bar.addWidget(self.count_label)
        layout.addLayout(bar)

        self.banner = ErrorBanner()
        layout.addWidget(self.banner)

        self.model = AuditModel(self)
        self.model.fetcher = self._fetch_more
        self.table = QTableView()
        self.table.setObjectName("auditTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        width = self.table.fontMetrics().horizontalAdvance
        for col, text in enumerate(("2024-05-01 14:03:22  ", "operator@workstation (as deploy)",
                                    "server-name", "model-name", "1.10.0-rc1", "hostkey.refused", "outcome ")):
            self.table.setColumnWidth(col, width(text) + 16)
        layout.addWidget(self.table, 1)

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(250)
        self.debounce.timeout.connect(self.refresh)
        self.text_edit.textChanged.connect(lambda _t: self.debounce.start())
        for combo in (self.server_combo, self.model_combo, self.action_combo):
            combo.currentIndexChanged.connect(self._combo_changed)
        self._filling = False

    def _combo(self, name: str, everything: str) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(name)
        combo.addItem(everything, "")
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        combo.setMinimumContentsLength(10)
        return combo

    # -- public -------------------------------------------------------------------------------
    def current_filter(self) -> AuditFilter:
        return AuditFilter(server=self.server_combo.currentData() or "", model=self.model_combo.currentData() or "",
                           action=self.action_combo.currentData() or "", text=self.text_edit.text().strip())

    def refresh(self) -> None:
        """Re-read the log from the start with the current filters (off the GUI thread)."""
        self.debounce.stop()
        self.generation += 1
        generation, flt = self.generation, self.current_filter()
        self.read_filter = flt
        self.loading = True
        task = self.runner.in_background("read audit log",
                                         lambda ctx: read_page(ctx.workspace.db, flt, PAGE, 0, with_choices=True),
                                         owner=self)
        task.finished.connect(lambda page, g=generation: self._loaded(g, page))
        task.failed.connect(lambda e, g=generation: self._load_failed(g, e))
        self.read_task = task

    def focus_filter(self) -> None:
        self.text_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.text_edit.selectAll()

    # -- loading ------------------------------------------------------------------------------
    def _fetch_more(self, offset: int) -> None:
        if self.loading:
            return  # a fresh read is on its way; it resets the rows and the fetching state
        generation, flt = self.generation, self.read_filter
        task = self.runner.in_background("read audit log", lambda ctx: read_page(ctx.workspace.db, flt, PAGE, offset),
                                         owner=self)
        task.finished.connect(lambda page, g=generation, o=offset: self._more_loaded(g, o, page))
        task.failed.connect(lambda e, g=generation: self._load_failed(g, e))
        self.more_task = task

    def _loaded(self, generation: int, page) -> None:
        if generation != self.generation:
            return  # a newer read is on its way
        self.read_task = None
        self.loading = False
        self.banner.clear()
        self._fill_choices(page.choices or {})
        self.model.set_rows(page.rows, page.total)
        self._show_count()

    def _more_loaded(self, generation: int, offset: int, page) -> None:
        self.more_task = None
        if generation != self.generation or offset != len(self.model.rows):
            return  # the log was re-read meanwhile (set_rows ends this fetch)
        self.model.append_rows(page.rows, page.total)
        self._show_count()

    def _load_failed(self, generation: int, error) -> None:
        if generation != self.generation:
            return
        self.read_task = self.more_task = None
        self.loading = False
        self.model.fetching = False
        self.banner.show_error(error, "Cannot read the audit log: ")

    def _show_count(self) -> None:
        total, shown = self.model.total, len(self.model.rows)
        text = f"{total} event{'' if total == 1 else 's'}"
        if shown < total:
            text += f" ({shown} shown)"
        self.count_label.setText(text)

    def _fill_choices(self, choices: dict) -> None:
        self._filling = True
        try:
            for combo, key in ((self.server_combo, "server"), (self.model_combo, "model"),
                               (self.action_combo, "action")):
                current = combo.currentData() or ""
                values = list(choices.get(key, []))
                if current and current not in values:
                    values.append(current)  # keep the operator's choice even when it matches nothing now
                wanted = [""] + sorted(values)
                if [combo.itemData(i) for i in range(combo.count())] != wanted:
                    everything = combo.itemText(0)
                    combo.clear()
                    combo.addItem(everything, "")
                    for value in wanted[1:]:
                        combo.addItem(value, value)
                    combo.setCurrentIndex(max(0, combo.findData(current)))
        finally:
            self._filling = False

    def _combo_changed(self, _index: int) -> None:
        if not self._filling:
            self.refresh()
