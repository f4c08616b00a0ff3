"""The Alerts view: the firing, pending and recently resolved alerts of every connected server
(one `alert_state` call per server per refresh, only while the view is shown), filtered by server
and model, with Silence… (audited, app.deploy.alerts.change through Workspace.alert_change, as the
CLI) and Test (a test notification through each channel of the selected alert's rule)."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.deploy import alerts as alert_service
from app.formatting import natural_key

from app.ui.alerts.silence_dialog import SilenceDialog
from app.ui.errors import ErrorBanner, StatusBanner
from app.ui.operations import ServerOp
from app.ui.servers.role_gate import RoleGate

COLUMNS = ["Rule", "Server", "Model", "State", "Since", "Value", "Notified"]
REFRESH_MS = 10000  # the evaluator's round
ALL = ""
STATE_COLORS = {"firing": "#c62828", "pending": "#ef6c00", "resolved": "#2e7d32"}


def state_text(a: dict) -> str:
    return a["state"] + (" (silenced)" if a.get("silenced") else "") + (" (inhibited)" if a.get("inhibited") else "")


def notified_text(a: dict) -> tuple[str, str]:
    """The cell ("webhook ok", "email FAILED") and its tooltip: each receiver's answer, whole."""
    notes = a.get("notified") or []
    cell = ", ".join(f"{n['channel'].split(':', 1)[0]} {'ok' if n['ok'] else 'FAILED'}" for n in notes)
    tip = "\n".join(f"{n['channel']}: {'ok' if n['ok'] else 'FAILED'} at {n.get('at') or '?'}"
                    f"{': ' + n['answer'] if n.get('answer') else ''}" for n in notes)
    return cell, tip


class AlertsPage(QWidget):
    """Signals:
        read(str server, object alerts): a server's alerts as read (the notifier compares them)
        changed(str server): a silence was written there (the audit log and the tree refresh)
    `servers()` names the servers to ask (the connected ones)."""

    read = Signal(str, object)
    changed = Signal(str)

    def __init__(self, runner, servers: Callable[[], list[str]], parent=None):
        super().__init__(parent)
        self.runner, self.servers = runner, servers
        self.alerts: dict[str, list[dict]] = {}  # server -> its alerts, each with `server`
        self.pending: dict[str, object] = {}  # server -> its call under way
        self.shown: list[dict] = []  # the rows of the table, in order
        self.dialog: SilenceDialog | None = None
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("<b>Alerts</b>"))
        self.server_combo, self.model_combo = QComboBox(), QComboBox()
        self.server_combo.setObjectName("alertServerCombo")
        self.model_combo.setObjectName("alertModelCombo")
        for label, combo in (("Server", self.server_combo), ("Model", self.model_combo)):
            combo.addItem("(all)", ALL)
            combo.setMinimumContentsLength(12)
            combo.currentIndexChanged.connect(self._fill)
            bar.addWidget(QLabel(label))
            bar.addWidget(combo)
        bar.addStretch(1)
        self.count_label = QLabel()
        self.count_label.setObjectName("alertCount")
        bar.addWidget(self.count_label)
        layout.addLayout(bar)
        self.banner = ErrorBanner()  # a server that could not be read
        self.status = StatusBanner()  # Test results
        self.status.setObjectName("alertStatus")
        layout.addWidget(self.banner)
        layout.addWidget(self.status)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("alertTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        layout.addWidget(self.table, 1)

        buttons = QHBoxLayout()
        self.silence_button = QPushButton("Silence…")
        self.silence_button.setObjectName("silenceButton")
        self.silence_button.setToolTip("Send nothing for the selected alert's rule for a while (audited)")
        self.silence_button.clicked.connect(self.silence)
        self.test_button = QPushButton("Test")
        self.test_button.setObjectName("testButton")
        self.test_button.setToolTip("Send a test notification through each channel of the selected alert's rule now")
        self.test_button.clicked.connect(self.test)
        for b in (self.silence_button, self.test_button):
            b.setEnabled(False)
            buttons.addWidget(b)
        self.role_label = QLabel()  # the user's role on the selected alert's server, for its model
        self.role_label.setObjectName("alertRole")
        buttons.addWidget(self.role_label)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.roles = RoleGate(self, self.role_label, [("alert_silence", self.silence_button),
                                                      ("alert_test", self.test_button)])
        self.roles.released.connect(self._selection_changed)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    # -- reading ------------------------------------------------------------------------------
    def showEvent(self, event):
        super().showEvent(event)
        self.timer.start()  # refreshed on a timer only while shown
        self.refresh()

    def hideEvent(self, event):
        self.timer.stop()
        super().hideEvent(event)

    def refresh(self) -> None:
        """Ask each connected server for its alerts (one call per server at a time)."""
        names = set(self.servers())
        for gone in set(self.alerts) - names:
            del self.alerts[gone]
        for server in sorted(names, key=natural_key):
            task = self.pending.get(server)
            if task is not None and not task.done:
                continue
            self.pending[server] = (
                ServerOp(self, server, f"alerts {server}", lambda ctx: alert_service.alerts(ctx.transport)["alerts"],
                         runner=self.runner)
                .success(lambda rows, s=server: self._read(s, rows))
                .with_banner(self.banner, f"{server}: ").run())
        self._fill()

    def _read(self, server: str, rows: list[dict]) -> None:
        self.alerts[server] = [dict(a, server=server) for a in rows]
        self.read.emit(server, self.alerts[server])
        self._fill()

    def firing(self, server: str) -> int:
        return sum(1 for a in self.alerts.get(server, []) if a["state"] == "firing")

    # -- the table ----------------------------------------------------------------------------
    def _fill(self) -> None:
        every = [a for s in sorted(self.alerts, key=natural_key) for a in self.alerts[s]]
        self._choices(self.server_combo, sorted({a["server"] for a in every}, key=natural_key))
        self._choices(self.model_combo, sorted({a["model"] for a in every if a["model"]}, key=natural_key))
        server, model = self.server_combo.currentData(), self.model_combo.currentData()
        order = {"firing": 0, "pending": 1, "resolved": 2}
        rows = sorted((a for a in every if (not server or a["server"] == server) and (not model or a["model"] == model)),
                      key=lambda a: (order.get(a["state"], 3), natural_key(a["server"]), a["rule"]))
        picked = self.selected()
        key = (picked["server"], picked["rule"], picked["model"]) if picked else None
        self.shown = rows
        self.table.setRowCount(len(rows))
        for r, a in enumerate(rows):
            notified, tip = notified_text(a)
            value = "" if a.get("value") is None else f"{a['value']:g}" if isinstance(a["value"], float) else str(a["value"])
            cells = [a["rule"], a["server"], a["model"] or "", state_text(a), a.get("since") or "", value, notified]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 3:
                    item.setForeground(QBrush(QColor(STATE_COLORS.get(a["state"], "#757575"))))
                    item.setToolTip(a.get("summary") or "")
                if c == 6:
                    item.setToolTip(tip)
                    if any(not n["ok"] for n in a.get("notified") or []):
                        item.setForeground(QBrush(QColor(STATE_COLORS["firing"])))
                self.table.setItem(r, c, item)
            if key == (a["server"], a["rule"], a["model"]):
                self.table.selectRow(r)
        firing = sum(1 for a in every if a["state"] == "firing")
        self.count_label.setText(f"{firing} firing, {len(every)} in all" if every else "no alerts")
        self._selection_changed()

    @staticmethod
    def _choices(combo: QComboBox, values: list[str]) -> None:
        current = combo.currentData()
        if [combo.itemData(i) for i in range(1, combo.count())] == values:
            return
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("(all)", ALL)
        for v in values + ([current] if current and current not in values else []):
            combo.addItem(v, v)
        combo.setCurrentIndex(max(0, combo.findData(current)))
        combo.blockSignals(False)

    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.shown[rows[0].row()] if rows and rows[0].row() < len(self.shown) else None

    def select(self, server: str, rule: str) -> None:
        for r, a in enumerate(self.shown):
            if (a["server"], a["rule"]) == (server, rule):
                self.table.selectRow(r)
                return

    def _selection_changed(self) -> None:
        alert = self.selected()
        if alert is not None:
            self.roles.show(alert["server"], alert.get("model"))
        for b in (self.silence_button, self.test_button):
            b.setEnabled(alert is not None)

    # -- actions ------------------------------------------------------------------------------
    def silence(self) -> None:
        alert = self.selected()
        if alert is None:
            return
        self.dialog = SilenceDialog(self.runner, alert["server"], alert["rule"], self)
        self.dialog.silenced.connect(self._silenced)
        self.dialog.open()

    def _silenced(self, server: str, rule: str, until: str) -> None:
        self.status.show_message("ok", f"{rule} on {server}: silenced until {until}")
        self.changed.emit(server)
        self.refresh()

    def test(self) -> None:
        alert = self.selected()
        if alert is None:
            return
        server, rule = alert["server"], alert["rule"]
        self.test_button.setEnabled(False)
        self.status.show_message("info", f"Sending a test notification for {rule} on {server}…")
        (ServerOp(self, server, f"alert test {rule}", lambda ctx: alert_service.test(ctx.transport, rule),
                  runner=self.runner)
         .ended(self._selection_changed)
         .success(lambda results: self._tested(server, rule, results))
         .failure(lambda _e: self.status.clear())
         .with_banner(self.banner, f"Test of {rule} on {server}: ").run())

    def _tested(self, server: str, rule: str, results: list[dict]) -> None:
        lines = "; ".join(f"{r['channel']}: {'ok' if r['ok'] else 'FAILED'} {r['status']}"
                          f"{': ' + r['answer'] if r['answer'] else ''}" for r in results)
        ok = results and all(r["ok"] for r in results)
        self.status.show_message("ok" if ok else "error", f"Test of {rule} on {server}: {lines or 'no channel'}")
