"""The Monitor page: the fleet overview first (overview.py), then the graphs of one model or one
server (graphs.py), on a stack. It tells the feed which servers it shows (`MonitorFeed.show_live`):
those are sampled every second, the others less often."""
from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QStackedWidget, QVBoxLayout, QWidget

from app.ui.monitor.graphs import MonitorGraphs
from app.ui.monitor.overview import FleetOverview


class MonitorPage(QWidget):
    """The Monitor page: the fleet overview, or the graphs of the target picked there."""

    def __init__(self, runner, feed, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.feed = feed
        self.overview = FleetOverview(feed)
        self.graphs = MonitorGraphs(runner, feed)
        self.overview.open_requested.connect(self.show_target)
        self.graphs.back_requested.connect(self.show_overview)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.overview)
        self.stack.addWidget(self.graphs)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self._warm = False
        self.overview.timer.timeout.connect(self._report)  # each second it is shown: scrolled, filtered
        self.overview.table.verticalScrollBar().valueChanged.connect(self._report)

    def live_servers(self) -> set[str]:
        """The servers whose live data is on screen: the overview's rows in view, or the graphs' server."""
        if not self.isVisible():
            return set()
        if self.stack.currentWidget() is self.graphs:
            return {self.graphs.server} if self.graphs.server else set()
        return self.overview.servers_on_screen()

    def _report(self) -> None:
        show = getattr(self.feed, "show_live", None)
        if show is not None:
            show(self.live_servers())

    def hideEvent(self, event):
        super().hideEvent(event)
        self._report()

    def showEvent(self, event):
        super().showEvent(event)
        self._report()
        if not self._warm:  # once the page has its size: lay out and paint the graphs while idle
            self._warm = True
            QTimer.singleShot(0, self, self._warm_graphs)

    def _warm_graphs(self) -> None:
        """Lay out and paint the (hidden) graphs once at the page's size: their first showing would
        otherwise resize every plot and paint them all anew, ~50 ms in the click that opens a model."""
        if self.stack.currentWidget() is not self.graphs:
            self.graphs.grab()

    def show_overview(self) -> None:
        self.stack.setCurrentWidget(self.overview)
        self.overview.refresh()
        self._report()

    def show_target(self, server: str, model: str = "") -> None:
        self.stack.setCurrentWidget(self.graphs)
        self.graphs.show_target(server, model or None)
        self._report()

    def refresh_markers(self) -> None:
        if self.stack.currentWidget() is self.graphs:
            self.graphs.reload_markers()
