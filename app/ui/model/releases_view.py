"""A model's releases, newest first, with their training metrics side by side, "Make current", and
below them what changed between the selected release and the current one."""
from datetime import datetime, timezone

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QSplitter, QTableView,
                               QVBoxLayout, QWidget)

from app.ui.icons import icon
from app.ui.model.release_diff_view import ReleaseDiffView
from app.ui.model.where_panel import WherePanel

ROLE_VERSION = Qt.ItemDataRole.UserRole + 1
ROLE_CURRENT = Qt.ItemDataRole.UserRole + 2
FIXED = ["Version", "Current", "Deployed at", "Deployed by", "Bundle sha256"]
Index = QModelIndex | QPersistentModelIndex


def local_time(iso: str | None) -> str:
    """'2024-05-01T10:00:00Z' as local time, '2024-05-01 12:00'; unparseable text as is."""
    if not iso:
        return ""
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


def who(by: dict | None) -> str:
    by = by or {}
    user, host, ssh_user = by.get("user") or "", by.get("host") or "", by.get("ssh_user") or ""
    text = f"{user}@{host}" if user and host else user or host
    if ssh_user and ssh_user != user:
        text += f" (as {ssh_user})"
    return text


def number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def metrics_of(release: dict) -> dict:
    training = (release.get("manifest") or {}).get("training") or {}
    metrics = training.get("metrics") or {}
    return metrics if isinstance(metrics, dict) else {}


class ReleasesModel(QAbstractTableModel):
    """Rows: releases newest first. Columns: FIXED, then one per training metric (the union)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[dict] = []
        self.metrics: list[str] = []

    def set_releases(self, releases: list[dict]) -> None:
        """`releases` as the agent lists them (oldest deploy first)."""
        self.beginResetModel()
        self.rows = list(reversed(releases))
        names: list[str] = []
        for r in releases:
            names += [k for k in metrics_of(r) if k not in names]
        self.metrics = names
        self.endResetModel()

    def current_version(self) -> str | None:
        return next((r["version"] for r in self.rows if r.get("current")), None)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(FIXED) + len(self.metrics)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < self.columnCount():
            return None
        name = FIXED[section] if section < len(FIXED) else self.metrics[section - len(FIXED)]
        if role == Qt.ItemDataRole.DisplayRole:
            return name
        if role == Qt.ItemDataRole.ToolTipRole and section >= len(FIXED):
            return f"Training metric {name!r} from each release's manifest"
        return None

    def data(self, index: Index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows) or index.column() >= self.columnCount():
            return None
        r, col = self.rows[index.row()], index.column()
        if role == ROLE_VERSION:
            return r["version"]
        if role == ROLE_CURRENT:
            return bool(r.get("current"))
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 4:
                return r.get("sha256") or ""
            if col == 2:
                return r.get("deployed_at") or ""
            return None
        if role == Qt.ItemDataRole.FontRole and r.get("current"):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.DecorationRole and col == 1 and r.get("current"):
            return icon("ok")
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= len(FIXED):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, r: dict, col: int) -> str:
        if col == 0:
            return r["version"]
        if col == 1:
            return "current" if r.get("current") else ""
        if col == 2:
            return local_time(r.get("deployed_at"))
        if col == 3:
            return who(r.get("deployed_by"))
        if col == 4:
            return (r.get("sha256") or "")[:12]
        return number(metrics_of(r).get(self.metrics[col - len(FIXED)]))


class ReleasesView(QWidget):
    """The table and its "Make current" button.

    Signals:
        make_current_requested(str version): the operator asked to make the selected release current
        compare_requested(str old, str new): show what changed from `old` to `new` (the page asks the
            server and calls `diff.show_diff`)
    """

    make_current_requested = Signal(str)
    compare_requested = Signal(str, str)

    def __init__(self, runner=None, parent=None):
        super().__init__(parent)
        self.busy = False
        self.model = ReleasesModel(self)
        self.table = QTableView()
        self.table.setObjectName("releasesTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.table.selectionModel().selectionChanged.connect(self._update_button)
        self.table.selectionModel().selectionChanged.connect(self._compare_selected)
        self.table.selectionModel().selectionChanged.connect(self._where_selected)
        self.table.doubleClicked.connect(lambda _i: self._request())
        self.make_current_button = QPushButton(icon("rollback"), "Make current…")
        self.make_current_button.setObjectName("makeCurrentButton")
        self.make_current_button.setToolTip("Switch the model to the selected release (its runner is started first)")
        self.make_current_button.clicked.connect(self._request)
        self.hint = QLabel("Select a release to make it current. Metrics come from each bundle's manifest.")
        self.hint.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.hint, 1)
        row.addWidget(self.make_current_button)
        self.diff = ReleaseDiffView()
        self.where = WherePanel(runner)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.table, 1)
        top_layout.addLayout(row)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.diff)
        split.addWidget(self.where)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setStretchFactor(2, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split, 1)
        self.compared: tuple[str, str] | None = None
        self._update_button()

    def set_releases(self, releases: list[dict]) -> None:
        selected = self.selected_version()
        self.model.set_releases(releases)
        self.table.resizeColumnsToContents()
        header = self.table.horizontalHeader()
        for col in range(self.model.columnCount()):
            header.resizeSection(col, header.sectionSize(col) + 16)
        if selected:
            self.select_version(selected)
        self._update_button()

    def selected_version(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(ROLE_VERSION) if rows else None

    def select_version(self, version: str) -> None:
        for row in range(self.model.rowCount()):
            if self.model.index(row, 0).data(ROLE_VERSION) == version:
                self.table.selectRow(row)
                return

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self._update_button()

    def _update_button(self, *_args) -> None:
        version = self.selected_version()
        ok = bool(version) and not self.busy and version != self.model.current_version()
        self.make_current_button.setEnabled(ok)

    def compare_pair(self) -> tuple[str, str] | None:
        """(old, new) for the selection: the current release to the selected one; for the current one
        itself, the release deployed before it to it."""
        version, current = self.selected_version(), self.model.current_version()
        if not version:
            return None
        if version != current:
            return (current, version) if current else None
        versions = [r["version"] for r in reversed(self.model.rows)]  # oldest deploy first
        at = versions.index(version)
        return (versions[at - 1], version) if at > 0 else None

    def _compare_selected(self, *_args) -> None:
        pair = self.compare_pair()
        if pair is None:
            self.compared = None
            self.diff.clear()
        elif pair != self.compared:
            self.compared = pair
            self.diff.show_waiting(*pair)
            self.compare_requested.emit(*pair)

    def _where_selected(self, *_args) -> None:
        version = self.selected_version()
        release = next((r for r in self.model.rows if r["version"] == version), {}) if version else {}
        self.where.set_release(version or "", release.get("sha256") or "")

    def _request(self) -> None:
        version = self.selected_version()
        if version and self.make_current_button.isEnabled():
            self.make_current_requested.emit(version)
