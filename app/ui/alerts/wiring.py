"""Alerts in the main window: the "Alerts" entry under the fleet, its page, the notification banner
above the fleet, and what feeds them (kept here so main_window.py stays a switchboard)."""
from __future__ import annotations

from PySide6.QtGui import QBrush, QColor, QStandardItem

from app.ui.alerts.notifier import AlertNotifier
from app.ui.alerts.page import AlertsPage
from app.ui.errors import StatusBanner
from app.ui.icons import icon
from app.ui.servers.fleet import ROLE_KIND
from app.ui.tasks import CONNECTED


class Alerts:
    """page: the Alerts view; notifier: the announcements; banner: where they go without a tray."""

    def __init__(self, window):
        self.window = window
        fleet = window.fleet_model
        item = QStandardItem(icon("warning"), "Alerts")
        item.setEditable(False)
        item.setData("alerts", ROLE_KIND)
        self.total = QStandardItem()  # every server's firing alerts
        self.total.setEditable(False)
        self.total.setForeground(QBrush(QColor("#c62828")))
        fleet.appendRow([item, self.total])
        self.page = AlertsPage(window.runner, lambda: [n for n in fleet.server_names()
                                                       if fleet.states.get(n, ("",))[0] == CONNECTED])
        window.stack.addWidget(self.page)
        self.banner = StatusBanner()
        self.banner.setObjectName("alertBanner")
        window.fleet.parentWidget().layout().insertWidget(0, self.banner)
        self.notifier = AlertNotifier(window, window.runner, self.banner, self.show, window.windowIcon())
        window.refresher.read.connect(self.notifier.status_read)
        self.page.read.connect(self.notifier.firing_read)
        self.page.read.connect(lambda server, _rows: fleet.set_firing(server, self.page.firing(server)))
        self.page.changed.connect(self._changed)
        for signal in (window.refresher.read, self.page.read):  # after the tree took the count
            signal.connect(lambda *_: self.total.setText(f"{sum(fleet.firing.values())} firing"
                                                         if any(fleet.firing.values()) else ""))

    def show(self, server: str = "", rule: str = "") -> None:
        self.window.stack.setCurrentWidget(self.page)
        if server:
            self.page.select(server, rule)

    def _changed(self, server: str) -> None:
        self.window.refresh(server, force=True)
        self.window.audit_page.refresh()
