"""The main window: the fleet on the left, the selected server / model / audit log on the right.
Views are fed by the task runner and report back with signals; this window wires them together
and owns the menus, shortcuts and layout memory."""
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QStandardItem
from PySide6.QtWidgets import (QFileDialog, QLabel, QLineEdit, QMainWindow, QMessageBox, QPushButton, QSplitter,
                               QStackedWidget, QVBoxLayout, QWidget)

from app import __version__
from app.store.servers import LOCAL, local_server

from app.ui.alerts.wiring import Alerts
from app.ui.audit.page import AuditPage
from app.ui.deploy.dialog import DeployDialog
from app.ui.errors import show_error, summary
from app.ui.servers.fleet import ROLE_KIND, ROLE_MODEL, ROLE_SERVER, FleetModel, FleetView
from app.ui.help.wiring import Help
from app.ui.servers.hostkey_dialog import HostKeyDialog
from app.ui.icons import icon
from app.ui.model.page import ModelPage
from app.ui.operations import BackgroundOp
from app.ui.refresher import ROUND_SPAN_MS, START_SPAN_MS, Refresher
from app.ui.servers.dialog import ServerDialog
from app.ui.servers.fleet_menu import FleetMenu
from app.ui.servers.page import ServerPage
from app.ui import window_layout
from app.ui.tasks import HOST_KEY, TaskRunner

REFRESH_MS = 15000
SERVER_LIST_MS = 3000  # a server added or removed with the CLI shows up within this (a cheap local read)


class MainWindow(QMainWindow):
    def __init__(self, runner: TaskRunner | None = None, monitor_feed=None):
        super().__init__()
        self.setWindowTitle(f"Berth {__version__}")
        self.setWindowIcon(icon("berth"))
        self.runner = runner or TaskRunner()
        self.runner.server_state.connect(self._on_server_state)
        self.runner.host_key_problem.connect(self._on_host_key_problem)
        self._asking_host_key: set[str] = set()
        self.refresher = Refresher(self, self.runner)
        self.refresher.read.connect(self._set_models)
        self.refresher.not_answering.connect(self._on_not_answering)
        self.servers = {LOCAL: local_server()}
        # Monitoring (pyqtgraph, sample streams) starts when the Monitor page is first shown.
        self.monitor_feed = monitor_feed
        self.monitor_page = None

        self.fleet_model = FleetModel(self)
        self.fleet_model.set_servers(list(self.servers.values()))
        monitor_item = QStandardItem(icon("monitor"), "Monitor")
        monitor_item.setEditable(False)
        monitor_item.setData("monitor", ROLE_KIND)
        self.fleet_model.appendRow([monitor_item, QStandardItem()])
        self.fleet = FleetView(self.fleet_model)
        self.fleet.setMinimumWidth(240)
        self.fleet.selected.connect(self._on_selected)
        self.fleet.bundle_dropped.connect(self.deploy_bundle)
        self.fleet_menu = FleetMenu(self)
        self.fleet_filter = QLineEdit()
        self.fleet_filter.setObjectName("fleetFilter")
        self.fleet_filter.setClearButtonEnabled(True)
        self.fleet_filter.setPlaceholderText("Filter: name, s1*, env:production")
        self.fleet_filter.textChanged.connect(self._filter_changed)
        fleet_panel = QWidget()
        panel = QVBoxLayout(fleet_panel)
        panel.setContentsMargins(0, 0, 0, 0)
        panel.addWidget(self.fleet_filter)
        panel.addWidget(self.fleet, 1)

        self.stack = QStackedWidget()
        self.server_page = ServerPage(self.runner)
        self.server_page.deploy_requested.connect(self.deploy_bundle)
        self.server_page.edit_requested.connect(self.edit_server)
        self.server_page.remove_requested.connect(self.remove_server)
        self.model_page = ModelPage(self.runner)
        self.model_page.changed.connect(self.on_changed)
        self.model_monitor_button = QPushButton(icon("monitor"), "Monitor")
        self.model_monitor_button.setToolTip("This model's graphs: CPU, memory, latency, requests (Ctrl+M: the fleet)")
        self.model_monitor_button.clicked.connect(
            lambda: self.show_monitor(self.model_page.server or LOCAL, self.model_page.model or ""))
        self.model_page.tabs.setCornerWidget(self.model_monitor_button)
        self.audit_page = AuditPage(self.runner)
        self.empty_page = QLabel("Select a server or a model on the left.")
        self.empty_page.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for page in (self.empty_page, self.server_page, self.model_page, self.audit_page):
            self.stack.addWidget(page)

        self.splitter = QSplitter()
        self.splitter.addWidget(fleet_panel)
        self.splitter.addWidget(self.stack)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([300, 900])
        self.setCentralWidget(self.splitter)
        self.setAcceptDrops(True)
        self.alerts = Alerts(self)
        self._build_menus()
        self.statusBar().showMessage("Ready")
        window_layout.restore(self)

        self.timer = QTimer(self)
        self.timer.timeout.connect(lambda: self.refresh_all(retry=False))
        self.timer.start(REFRESH_MS)
        self.server_list_timer = QTimer(self)
        self.server_list_timer.timeout.connect(lambda: self.load_servers(quiet=True))
        self.server_list_timer.start(SERVER_LIST_MS)
        self.load_servers()
        self.fleet.select(LOCAL)
        self.fleet.expandAll()
        self.fleet.setFocus()  # the tree, not the filter box above it (Ctrl+F still goes to the audit log's)

    # -- menus and shortcuts ------------------------------------------------------------------
    def _build_menus(self) -> None:
        def act(menu, text, slot, shortcut=None, icon_name=None):
            a = QAction(icon(icon_name) if icon_name else icon(""), text, self)
            if isinstance(shortcut, tuple):  # (standard key, the key when the platform defines none)
                standard, fallback = shortcut
                a.setShortcuts(QKeySequence.keyBindings(standard) or [QKeySequence(fallback)])
            elif shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            a.triggered.connect(slot)
            menu.addAction(a)
            return a

        file = self.menuBar().addMenu("&File")
        self.add_server_action = act(file, "&Add server…", self.add_server, "Ctrl+N", "add")
        self.deploy_action = act(file, "&Deploy folder…", lambda: self.fleet_menu.deploy(
            self.fleet.selected_servers() or [self.current_server()]), "Ctrl+D", "deploy")
        self.deploy_archive_action = act(file, "Deploy &archive…", self.deploy_archive, "Ctrl+Shift+D", "deploy")
        file.addSeparator()
        act(file, "&Quit", self.close, (QKeySequence.StandardKey.Quit, "Ctrl+Q"))
        view = self.menuBar().addMenu("&View")
        self.refresh_action = act(view, "&Refresh", lambda: self.refresh_all(retry=True),
                                  (QKeySequence.StandardKey.Refresh, "F5"), "refresh")
        act(view, "Au&dit log", self.show_audit, "Ctrl+L", "audit")
        self.monitor_action = act(view, "&Monitor", lambda: self.show_monitor(), "Ctrl+M", "monitor")
        act(view, "Ale&rts", lambda: self.alerts.show(), "Ctrl+Shift+A", "warning")
        act(view, "&Filter", self.focus_filter, (QKeySequence.StandardKey.Find, "Ctrl+F"))
        edit = self.menuBar().addMenu("&Edit")
        self.delete_action = act(edit, "&Remove selected server…", self.remove_selected,
                                 (QKeySequence.StandardKey.Delete, "Del"))
        self.help = Help(self, self.menuBar().addMenu("&Help"))

        tools = self.addToolBar("Main")
        tools.setObjectName("mainToolbar")
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (self.add_server_action, self.deploy_action, self.refresh_action):
            tools.addAction(a)

    # -- servers ------------------------------------------------------------------------------
    def load_servers(self, quiet: bool = False) -> None:
        """Read the server list (the CLI may have changed it); `quiet`: a periodic read, whose failure
        goes to the status bar rather than a dialog every few seconds."""
        def failed(e):
            if quiet:
                self.statusBar().showMessage(f"Cannot read the server list: {summary(e)}")
            else:
                show_error(self, "Cannot read the server list", e)

        (BackgroundOp(self, "servers", lambda ctx: ctx.workspace.servers.list())
         .success(self._servers_read if quiet else self._set_servers).failure(failed).run())

    def _servers_read(self, servers) -> None:
        """A periodic read: the fleet changes only when the list did."""
        if {s.name: s for s in servers} != self.servers:
            self._set_servers(servers)

    def _set_servers(self, servers) -> None:
        self.servers = {s.name: s for s in servers}
        self.fleet_model.set_servers(servers)
        self.fleet.set_filter(self.fleet_filter.text())
        self.fleet.expandAll()
        for name in (set(self.refresher.pending) | set(self.refresher.stalled)) - set(self.servers):
            self.refresher.forget(name)  # removed: nothing more to ask or to show about it
            self.fleet_model.stalled.pop(name, None)
        if self.monitor_feed is not None:
            self.monitor_feed.set_servers(self.servers)
        if self.monitor_page is not None:
            self.monitor_page.overview.set_environments({n: s.environment for n, s in self.servers.items()})
        self._refresh_servers(span_ms=START_SPAN_MS)

    def refresh_all(self, retry: bool = True) -> None:
        """Refresh (F5, `retry`: a server not answering is asked again at once) and the periodic
        refresh: the server list again, every server's status (spread over seconds), the audit log."""
        self.load_servers(quiet=True)
        self._refresh_servers(retry=retry)
        self.audit_page.refresh()

    def _refresh_servers(self, retry: bool = False, span_ms: int = ROUND_SPAN_MS) -> None:
        names = [n for n in self.fleet_model.server_names() if n in self.servers
                 and self.fleet_model.states.get(n, ("",))[0] != HOST_KEY]
        self.refresher.refresh_all(names, retry=retry, span_ms=span_ms)

    def refresh(self, server: str, force: bool = False) -> None:
        self.refresher.refresh(server, force=force)

    def _filter_changed(self, text: str) -> None:
        self.fleet.set_filter(text)
        if self.monitor_page is not None:
            self.monitor_page.overview.set_filter(text)

    def _on_not_answering(self, server: str, since: float) -> None:
        self.fleet_model.set_stalled(server, since)
        if self.server_page.server is not None and self.server_page.server.name == server:
            self.server_page.set_state(*self._page_state(server))
        if self.monitor_page is not None:
            self.monitor_page.overview.refresh()

    def _set_models(self, server: str, rows: list) -> None:
        if not self.fleet_model.set_models(server, rows):
            return  # as shown already: the periodic status of N servers costs no relayout of the tree
        item = self.fleet_model.server_item(server)
        if item is not None:  # its models shown (expandAll walks the whole tree: N servers, N/15 times a second)
            self.fleet.expand(item.index())
        index = self.fleet.currentIndex().siblingAtColumn(0)
        if index.data(ROLE_KIND) == "model" and index.data(ROLE_SERVER) == server:
            status = self.fleet_model.status_of(server, index.data(ROLE_MODEL))
            if status:
                self.model_page.show_model(server, status)

    def _on_server_state(self, server: str, state: str, detail: str) -> None:
        self.fleet_model.set_state(server, state, detail)
        if self.server_page.server is not None and self.server_page.server.name == server:
            self.server_page.set_state(*self._page_state(server))

    def _page_state(self, server: str) -> tuple[str, str]:
        if server in self.fleet_model.stalled:
            return self.fleet_model.state_text(server), "asked again with growing pauses (F5: now)"
        return self.fleet_model.states.get(server, ("", ""))

    def _on_host_key_problem(self, server: str, error) -> None:
        if server in self._asking_host_key:
            return
        self._asking_host_key.add(server)
        dialog = HostKeyDialog(server, error, self)
        dialog.finished.connect(lambda _r, d=dialog, s=server: self._host_key_answered(s, d))
        dialog.open()

    def _host_key_answered(self, server: str, dialog) -> None:
        self._asking_host_key.discard(server)
        if dialog.trusted_fingerprint:
            self.runner.trust_host_key(server, dialog.trusted_fingerprint)
            self.refresh(server, force=True)

    def current_server(self) -> str:
        return self.fleet.currentIndex().siblingAtColumn(0).data(ROLE_SERVER) or LOCAL

    def add_server(self) -> None:
        dialog = ServerDialog(self.runner, None, self)
        dialog.saved.connect(self._server_saved)
        dialog.open()

    def edit_server(self, name: str) -> None:
        dialog = ServerDialog(self.runner, self.servers.get(name), self)
        dialog.saved.connect(lambda new, old=name: self._server_saved(new, old))
        dialog.open()

    def _server_saved(self, name: str, old: str | None = None) -> None:
        if old:
            self.runner.disconnect(old)
        self.runner.disconnect(name)
        self.load_servers()
        self.audit_page.refresh()
        QTimer.singleShot(0, lambda: self.fleet.select(name))

    def remove_selected(self) -> None:
        server = self.current_server()
        if server != LOCAL:
            self.remove_server(server)

    def remove_server(self, name: str) -> None:
        answer = QMessageBox.question(
            self, "Remove server",
            f"Remove {name} from this computer's server list?\n\nNothing on the server is changed: "
            f"its models keep running.", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.runner.disconnect(name)
        (BackgroundOp(self, f"remove {name}", lambda ctx: ctx.workspace.remove_server(name))
         .success(lambda _: self.load_servers()).failure(lambda e: show_error(self, f"Cannot remove {name}", e)).run())

    # -- pages --------------------------------------------------------------------------------
    def _on_selected(self, kind: str, server: str, model: str) -> None:
        if kind == "server" and server in self.servers:
            self.server_page.show_server(self.servers[server], self._page_state(server))
            self.stack.setCurrentWidget(self.server_page)
        elif kind == "model":
            self.model_page.show_model(server, self.fleet_model.status_of(server, model))
            self.stack.setCurrentWidget(self.model_page)
        elif kind == "audit":
            self.show_audit()
        elif kind == "monitor":
            self.show_monitor()
        elif kind == "alerts":
            self.alerts.show()
        else:
            self.stack.setCurrentWidget(self.empty_page)

    def show_audit(self) -> None:
        self.stack.setCurrentWidget(self.audit_page)
        self.audit_page.refresh()

    def start_monitoring(self) -> None:
        """Sample every server from now on (`berth` calls this once the window is up, so history is
        recorded whenever Berth runs; tests that never look at the Monitor page skip it)."""
        if self.monitor_feed is None:
            from app.ui.monitor.feed import BACKGROUND_INTERVAL, MonitorFeed

            # a server's live data on no screen is sampled less often (the Monitor page says which it shows)
            self.monitor_feed = MonitorFeed(self, background_interval=BACKGROUND_INTERVAL)
        if not self.monitor_feed.started:
            self.monitor_feed.start(self.servers)

    def show_monitor(self, server: str = "", model: str = "") -> None:
        """The Monitor page: the fleet overview, or the graphs of `server` (and `model`)."""
        if self.monitor_page is None:
            from app.ui.monitor.page import MonitorPage

            self.start_monitoring()
            self.monitor_page = MonitorPage(self.runner, self.monitor_feed)
            self.monitor_page.overview.model.stalled = self.refresher.stalled  # shown there too
            self.monitor_page.overview.set_environments({n: s.environment for n, s in self.servers.items()})
            self.monitor_page.overview.set_filter(self.fleet_filter.text())
            self.stack.addWidget(self.monitor_page)
        self.stack.setCurrentWidget(self.monitor_page)
        if server:
            self.monitor_page.show_target(server, model)
        else:
            self.monitor_page.show_overview()

    def focus_filter(self) -> None:
        self.show_audit()
        self.audit_page.focus_filter()

    # -- deploy -------------------------------------------------------------------------------
    def deploy_bundle(self, server: str, path: str = "") -> None:
        if not path:
            path = QFileDialog.getExistingDirectory(self, f"Deploy a bundle folder to {server}")
            if not path:
                return
        dialog = DeployDialog(self.runner, server, Path(path), self)
        dialog.changed.connect(self.on_changed)
        dialog.open()

    def deploy_archive(self) -> None:
        server = self.current_server()
        path, _ = QFileDialog.getOpenFileName(self, f"Deploy a bundle archive to {server}", "",
                                              "Bundle archives (*.tar.gz *.tgz);;All files (*)")
        if path:
            self.deploy_bundle(server, path)

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.deploy_bundle(self.current_server(), urls[0])

    def on_changed(self, server: str) -> None:
        """A deploy, rollback, start or stop finished: refresh what it may have changed."""
        self.refresh(server, force=True)
        self.audit_page.refresh()
        if self.monitor_page is not None:
            self.monitor_page.refresh_markers()

    # -- misc ---------------------------------------------------------------------------------
    def closeEvent(self, event):
        window_layout.save(self)
        self.timer.stop()
        if self.monitor_feed is not None:
            self.monitor_feed.stop()
        self.runner.shutdown(wait=False)
        super().closeEvent(event)
