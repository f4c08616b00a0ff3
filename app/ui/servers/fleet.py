"""The sidebar: servers grouped by environment (with live connection state, "not answering since"
standing out) → their models (version, running / stopped / failed), and the audit log. Bundles can
be dropped on a server; several servers or models can be selected for one action on all."""
import time
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView

from app.formatting import natural_key
from app.store.servers import LOCAL, ServerConfig

from app.ui.icons import icon
from app.ui.servers.fleet_filter import matches
from app.ui.tasks import CONNECTED, CONNECTING, HOST_KEY, UNREACHABLE

ROLE_KIND = Qt.ItemDataRole.UserRole + 1  # "server" | "group" | "model" | "audit" | "monitor"
ROLE_SERVER = Qt.ItemDataRole.UserRole + 2
ROLE_MODEL = Qt.ItemDataRole.UserRole + 3
ROLE_DATA = Qt.ItemDataRole.UserRole + 4  # ServerConfig for servers, the status dict for models
ROLE_GROUP = Qt.ItemDataRole.UserRole + 5  # the environment of a group row

NOT_ANSWERING = "not answering"
STATE_COLORS = {
    "running": "#2e7d32", CONNECTED: "#2e7d32", "stopped": "#757575", CONNECTING: "#757575",
    "failed": "#c62828", UNREACHABLE: "#ef6c00", HOST_KEY: "#c62828", NOT_ANSWERING: "#c62828",
}
STATE_TEXT = {HOST_KEY: "host key problem"}
STALLED_BACKGROUND = "#fde0dc"


def environment_of(server: ServerConfig) -> str:
    """The group a server is shown in ("" for `local` and servers with no environment: at the top)."""
    return "" if server.name == LOCAL else (server.environment or "")


class FleetModel(QStandardItemModel):
    """Servers grouped by environment (a group row each, natural order: s2 before s10), their models
    under them; `local` and servers with no environment at the top."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHorizontalHeaderLabels(["Server / model", "State"])
        self.states: dict[str, tuple[str, str]] = {}
        self.stalled: dict[str, float] = {}  # server -> unix time since which it does not answer
        self._items: dict[str, QStandardItem] = {}  # server -> its row: a look-up, not a walk of the tree
        self._rows: dict[str, list] = {}  # server -> the status rows last shown (the same again: nothing to do)
        self.firing: dict[str, int] = {}  # server -> its firing alerts (the status rows' alerts_firing)
        audit = QStandardItem(icon("audit"), "Audit log")
        audit.setData("audit", ROLE_KIND)
        audit.setEditable(False)
        self.appendRow([audit, _cell("")])

    # -- servers ---------------------------------------------------------------------------
    def set_servers(self, servers: list[ServerConfig]) -> None:
        wanted = {s.name: s for s in servers}
        for item in self.server_items():  # gone, or moved to another group: made again below
            name = item.data(ROLE_SERVER)
            if name not in wanted or (item.parent().data(ROLE_GROUP) if item.parent() else "") \
                    != environment_of(wanted[name]):
                self._items.pop(name, None)
                self._rows.pop(name, None)
                _parent(self, item).removeRow(item.row())
        groups: dict[str, list[ServerConfig]] = {}
        for server in servers:
            groups.setdefault(environment_of(server), []).append(server)
        for row in reversed(range(self.rowCount())):
            if self.item(row).data(ROLE_KIND) == "group" and self.item(row).data(ROLE_GROUP) not in groups:
                self.removeRow(row)
        root = self.invisibleRootItem()
        top = sorted(groups.pop("", []), key=lambda s: (s.name != LOCAL, natural_key(s.name)))
        for pos, server in enumerate(top):
            self._place(root, pos, server)
        for pos, env in enumerate(sorted(groups, key=natural_key), start=len(top)):
            group = self.group_item(env)
            if group is None:
                group = QStandardItem(icon("server"), env)
                group.setEditable(False)
                group.setData("group", ROLE_KIND)
                group.setData(env, ROLE_GROUP)
                font = QFont()
                font.setBold(True)
                group.setFont(font)
                root.insertRow(pos, [group, _cell("")])
            elif group.row() != pos:
                root.insertRow(pos, root.takeRow(group.row()))
            for i, server in enumerate(sorted(groups[env], key=lambda s: natural_key(s.name))):
                self._place(group, i, server)
            self._paint_group(env)

    def _place(self, parent: QStandardItem, pos: int, server: ServerConfig) -> None:
        item = self.server_item(server.name)
        if item is None:
            item = QStandardItem()
            item.setEditable(False)
            item.setData("server", ROLE_KIND)
            item.setData(server.name, ROLE_SERVER)
            item.setDropEnabled(True)
            parent.insertRow(pos, [item, _cell("")])
            self._items[server.name] = item
        elif item.row() != pos:
            parent.insertRow(pos, parent.takeRow(item.row()))
        item.setData(server, ROLE_DATA)
        item.setText(server.name)  # its group names its environment
        item.setIcon(icon("computer" if server.kind == "local" else "server"))
        item.setToolTip(server.describe())
        self._paint_state(server.name)

    def server_items(self) -> list[QStandardItem]:
        """Every server row, in the order shown."""
        found = []
        for row in range(self.rowCount()):
            item = self.item(row)
            if item.data(ROLE_KIND) == "server":
                found.append(item)
            elif item.data(ROLE_KIND) == "group":
                found.extend(item.child(r) for r in range(item.rowCount()))
        return found

    def server_item(self, name: str) -> QStandardItem | None:
        item = self._items.get(name)
        try:
            if item is not None and item.model() is self and item.data(ROLE_SERVER) == name:
                return item
        except RuntimeError:  # its row was removed (the C++ item is gone): found again below
            pass
        item = next((item for item in self.server_items() if item.data(ROLE_SERVER) == name), None)
        if item is not None:
            self._items[name] = item
        return item

    def group_item(self, environment: str) -> QStandardItem | None:
        for row in range(self.rowCount()):
            item = self.item(row)
            if item.data(ROLE_KIND) == "group" and item.data(ROLE_GROUP) == environment:
                return item
        return None

    def server_names(self) -> list[str]:
        return [item.data(ROLE_SERVER) for item in self.server_items()]

    def set_state(self, server: str, state: str, detail: str = "") -> None:
        self.states[server] = (state, detail)
        self._paint_state(server)

    def set_stalled(self, server: str, since: float) -> None:
        """`since` (unix time): it has not answered a status call since then; 0: it answers again."""
        if since:
            self.stalled[server] = since
        else:
            self.stalled.pop(server, None)
        self._paint_state(server)

    def set_firing(self, server: str, count: int) -> None:
        if self.firing.get(server, 0) != count:
            self.firing[server] = count
            self._paint_state(server)

    def state_text(self, server: str) -> str:
        if server in self.stalled:
            return f"{NOT_ANSWERING} since {time.strftime('%H:%M:%S', time.localtime(self.stalled[server]))}"
        state = self.states.get(server, ("", ""))[0]
        firing = self.firing.get(server, 0)
        return STATE_TEXT.get(state, state) + (f" · {firing} firing" if firing else "")

    def _paint_state(self, server: str) -> None:
        item = self.server_item(server)
        if item is None:
            return
        state, detail = self.states.get(server, ("", ""))
        cell = _parent(self, item).child(item.row(), 1)
        cell.setText(self.state_text(server))
        stalled = server in self.stalled
        cell.setToolTip(f"{self.state_text(server)}: no answer to its status call; asked again with growing "
                        "pauses (F5: now)." + (f"\n{detail}" if detail else "") if stalled else detail)
        firing = self.firing.get(server, 0) and not stalled
        cell.setForeground(QBrush(QColor(STATE_COLORS.get(NOT_ANSWERING if stalled or firing else state, "#757575"))))
        font = QFont()
        font.setBold(stalled)
        cell.setFont(font)
        for c in (item, cell):
            c.setBackground(QBrush(QColor(STALLED_BACKGROUND)) if stalled else QBrush())
        if item.parent() is not None:
            self._paint_group(item.parent().data(ROLE_GROUP))

    def _paint_group(self, environment: str) -> None:
        group = self.group_item(environment)
        if group is None:
            return
        names = [group.child(r).data(ROLE_SERVER) for r in range(group.rowCount())]
        stalled = sum(1 for n in names if n in self.stalled)
        cell = self.item(group.row(), 1)
        cell.setText(f"{stalled} not answering" if stalled else f"{len(names)} server{'s' if len(names) != 1 else ''}")
        cell.setForeground(QBrush(QColor(STATE_COLORS[NOT_ANSWERING] if stalled else "#757575")))

    # -- models ----------------------------------------------------------------------------
    def set_models(self, server: str, rows: list[dict]) -> bool:
        """The models under `server`; False when they are what is shown already (the periodic status
        of an unchanged server: no item touched, so the view neither relays out nor repaints)."""
        parent = self.server_item(server)
        if parent is not None:  # the status carries the count, with or without models (Workspace.StatusRows)
            firing = getattr(rows, "alerts_firing", None)
            if firing is not None or rows:
                self.set_firing(server, (rows[0].get("alerts_firing") if firing is None else firing) or 0)
        if parent is None or (self._rows.get(server) == rows and parent.rowCount() == len(rows)):
            return False
        self._rows[server] = rows
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
            # a model with an experiment running says so ("running · canary 25%"): its port is the router's
            state.setText(row["state"] + (f" · {row['experiment']}" if row.get("experiment") else ""))
            state.setForeground(QBrush(QColor(STATE_COLORS.get(row["state"], "#757575"))))
        return True

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


def _parent(model: QStandardItemModel, item: QStandardItem) -> QStandardItem:
    return item.parent() or model.invisibleRootItem()


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
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)  # Ctrl/Shift: several
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.filter_text = ""
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        # names always whole; the state gets the rest ("not answering since …" is elided, its tooltip whole)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.header().setStretchLastSection(True)
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

    # -- filter and multi-selection --------------------------------------------------------------
    def set_filter(self, text: str) -> None:
        """Show only the servers `text` matches (fleet_filter.py: name, glob, env:X); a group with none
        is hidden; the audit log and monitor rows stay."""
        self.filter_text = text.strip()
        m: FleetModel = self.model()
        root = m.invisibleRootItem().index()
        for row in range(m.rowCount()):
            item = m.item(row)
            kind = item.data(ROLE_KIND)
            if kind == "server":
                self.setRowHidden(row, root, not self._shown(item))
            elif kind == "group":
                shown = [self._shown(item.child(r)) for r in range(item.rowCount())]
                for r, ok in enumerate(shown):
                    self.setRowHidden(r, item.index(), not ok)
                self.setRowHidden(row, root, not any(shown))

    def _shown(self, item: QStandardItem) -> bool:
        server = item.data(ROLE_DATA)
        return matches(self.filter_text, item.data(ROLE_SERVER) or "", environment_of(server) if server else "")

    def visible_servers(self) -> list[str]:
        m: FleetModel = self.model()
        return [item.data(ROLE_SERVER) for item in m.server_items() if self._shown(item)]

    def selected_servers(self) -> list[str]:
        """The servers of the selected server rows (a group row: its servers the filter shows), in the
        tree's order."""
        m: FleetModel = self.model()
        picked = set()
        for index in self.selectionModel().selectedRows(0):
            item = m.itemFromIndex(index)
            if item.data(ROLE_KIND) == "server":
                picked.add(item.data(ROLE_SERVER))
            elif item.data(ROLE_KIND) == "group":
                picked.update(item.child(r).data(ROLE_SERVER) for r in range(item.rowCount())
                              if self._shown(item.child(r)))
        return [name for name in m.server_names() if name in picked]

    def selected_models(self) -> list[tuple[str, str]]:
        """(server, model) of the selected model rows, in the tree's order."""
        rows = [(i.data(ROLE_SERVER), i.data(ROLE_MODEL)) for i in self.selectionModel().selectedRows(0)
                if i.data(ROLE_KIND) == "model"]
        order = {name: n for n, name in enumerate(self.model().server_names())}
        return sorted(rows, key=lambda r: (order.get(r[0], 0), natural_key(r[1])))

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
