"""The sidebar: servers (with environment and live connection state) → their models (version,
running / stopped / failed), and the audit log. Bundles can be dropped on a server."""
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView

from app.store.servers import ServerConfig

from app.ui.icons import icon
from app.ui.tasks import CONNECTED, CONNECTING, HOST_KEY, UNREACHABLE

ROLE_KIND = Qt.ItemDataRole.UserRole + 1  # "server" | "model" | "audit"
ROLE_SERVER = Qt.ItemDataRole.UserRole + 2
ROLE_MODEL = Qt.ItemDataRole.UserRole + 3
ROLE_DATA = Qt.ItemDataRole.UserRole + 4  # ServerConfig for servers, the status dict for models

STATE_COLORS = {
    "running": "#2e7d32", CONNECTED: "#2e7d32", "stopped": "#757575", CONNECTING: "#757575",
    "failed": "#c62828", UNREACHABLE: "#ef6c00", HOST_KEY: "#c62828",
}
STATE_TEXT = {HOST_KEY: "host key problem"}


class FleetModel(QStandardItemModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHorizontalHeaderLabels(["Server / model", "State"])
        self.states: dict[str, tuple[str, str]] = {}
        audit = QStandardItem(icon("audit"), "Audit log")
        audit.setData("audit", ROLE_KIND)
        audit.setEditable(False)
        self.appendRow([audit, _cell("")])

    # -- servers ---------------------------------------------------------------------------
    def set_servers(self, servers: list[ServerConfig]) -> None:
        wanted = [s.name for s in servers]
        for row in reversed(range(self.rowCount())):
            item = self.item(row)
            if item.data(ROLE_KIND) == "server" and item.data(ROLE_SERVER) not in wanted:
                self.removeRow(row)
        for pos, server in enumerate(servers):
            item = self.server_item(server.name)
            if item is None:
                item = QStandardItem()
                item.setEditable(False)
                item.setData("server", ROLE_KIND)
                item.setData(server.name, ROLE_SERVER)
                item.setDropEnabled(True)
                self.insertRow(pos, [item, _cell("")])
            item.setData(server, ROLE_DATA)
            label = server.name + (f"  [{server.environment}]" if server.environment and server.name != "local" else "")
            item.setText(label)
            item.setIcon(icon("computer" if server.kind == "local" else "server"))
            item.setToolTip(server.describe())
            self._paint_state(server.name)

    def server_item(self, name: str) -> QStandardItem | None:
        for row in range(self.rowCount()):
            item = self.item(row)
            if item.data(ROLE_KIND) == "server" and item.data(ROLE_SERVER) == name:
                return item
        return None

    def server_names(self) -> list[str]:
        return [self.item(r).data(ROLE_SERVER) for r in range(self.rowCount()) if self.item(r).data(ROLE_KIND) == "server"]

    def set_state(self, server: str, state: str, detail: str = "") -> None:
        self.states[server] = (state, detail)
        self._paint_state(server)

    def _paint_state(self, server: str) -> None:
        item = self.server_item(server)
        if item is None:
            return
        state, detail = self.states.get(server, ("", ""))
        cell = self.item(item.row(), 1)
        cell.setText(STATE_TEXT.get(state, state))
        cell.setToolTip(detail)
        cell.setForeground(QBrush(QColor(STATE_COLORS.get(state, "#757575"))))

    # -- models ----------------------------------------------------------------------------
    def set_models(self, server: str, rows: list[dict]) -> None:
        parent = self.server_item(server)
        if parent is None:
            return
        names = [r["model"] for r in rows]
        for r in reversed(range(parent.rowCount())):
            if parent.child(r).data(ROLE_MODEL) not in names:
                parent.removeRow(r)
        for pos, row in enumerate(sorted(rows, key=lambda r: r["model"])):
            item = self.model_item(server, row["model"])
            if item is None:
                item = QStandardItem(icon("model"), "")
                item.setEditable(False)
                item.setData("model", ROLE_KIND)
                item.setData(server, ROLE_SERVER)
                item.setData(row["model"], ROLE_MODEL)
                parent.insertRow(pos, [item, _cell("")])
            item.setText(f"{row['model']}  {row['version']}")
            item.setData(row, ROLE_DATA)
            state = parent.child(item.row(), 1)
            state.setText(row["state"])
            state.setForeground(QBrush(QColor(STATE_COLORS.get(row["state"], "#757575"))))

    def model_item(self, server: str, model: str) -> QStandardItem | None:
        parent = self.server_item(server)
        if parent is None:
            return None
        for r in range(parent.rowCount()):
            if parent.child(r).data(ROLE_MODEL) == model:
                return parent.child(r)
        return None

    def status_of(self, server: str, model: str) -> dict | None:
        item = self.model_item(server, model)
        return item.data(ROLE_DATA) if item else None

    # -- drops -------------------------------------------------------------------------------
    def mimeTypes(self):
        return ["text/uri-list"]


def _cell(text: str) -> QStandardItem:
    cell = QStandardItem(text)
    cell.setEditable(False)
    return cell


class FleetView(QTreeView):
    """Signals:
        selected(str kind, str server, str model): kind is server, model or audit
        bundle_dropped(str server, str path): a bundle folder or archive dropped on a server row
    """

    selected = Signal(str, str, str)
    bundle_dropped = Signal(str, str)

    def __init__(self, model: FleetModel, parent=None):
        super().__init__(parent)
        self.setModel(model)
        self.setUniformRowHeights(True)
        self.setAnimated(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.header().setStretchLastSection(False)
        self.selectionModel().currentChanged.connect(self._on_current)
        # a click on the row already current shows its page again (after the Monitor or the Audit
        # log was opened from the menu, the fleet's current row is unchanged)
        self.clicked.connect(lambda index: self._on_current(index, QModelIndex()))

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        index = current.siblingAtColumn(0)
        kind = index.data(ROLE_KIND) or ""
        self.selected.emit(kind, index.data(ROLE_SERVER) or "", index.data(ROLE_MODEL) or "")

    def select(self, server: str, model: str = "") -> None:
        m: FleetModel = self.model()
        item = m.model_item(server, model) if model else m.server_item(server)
        if item is None:
            return
        if self.currentIndex().siblingAtColumn(0) == item.index():
            self._on_current(item.index(), QModelIndex())
        else:
            self.setCurrentIndex(item.index())

    def server_at(self, pos) -> str:
        index = self.indexAt(pos).siblingAtColumn(0)
        return index.data(ROLE_SERVER) or ""

    # Drag and drop of bundle folders / archives from the file manager
    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event):
        if event.mimeData().hasUrls() and self.server_at(event.position().toPoint()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event):
        server = self.server_at(event.position().toPoint())
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if server and urls:
            event.acceptProposedAction()
            self.bundle_dropped.emit(server, str(Path(urls[0])))
        else:
            event.ignore()
