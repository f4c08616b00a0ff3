"""A desktop notification when an alert newly fires while Berth runs: the tray's message when the
desktop has a tray, else a banner in the window. Fed by what is read anyway: the fleet refresh's
status (its `alerts_firing` and the key of which fire; only when the key changes is the server's
`alert_state` asked, one call, and the sets compared) and the Alerts view's reads. One
notification per server per reading at most (the server is the group, as on the server side);
what fired before Berth started, or before the server's first reading, is the baseline and is
not announced."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSystemTrayIcon

from app.deploy import alerts as alert_service

from app.ui.operations import ServerOp

TRAY_MS = 10000


def firing_set(rows: list[dict]) -> set[tuple[str, str]]:
    return {(a["rule"], a["model"] or "") for a in rows if a["state"] == "firing"}


class AlertNotifier(QObject):
    """Signals: notified(str title, str text): one announcement (tray or banner)."""

    notified = Signal(str, str)

    def __init__(self, view, runner, banner, show_alerts: Callable[[str, str], None], icon=None):
        super().__init__(view)
        self.view, self.runner, self.banner, self.show_alerts, self.icon = view, runner, banner, show_alerts, icon
        self.counts: dict[str, int] = {}  # server -> its last alerts_firing
        self.keys: dict[str, str | None] = {}  # server -> the alerts_firing_key its last question was about
        self.known: dict[str, set] = {}  # server -> (rule, model) firing at its last reading
        self.asking: dict[str, object] = {}
        self.tray: QSystemTrayIcon | None = None
        self.last = ("", "")  # (server, rule) of the last announcement: where a click on it leads

    def status_read(self, server: str, rows: list) -> None:
        """A fleet refresh's status (Workspace.StatusRows: its count and the key of what fires, models
        or not): when the key changed, what fires changed, even at the same count (one resolved,
        another fired), so `alert_state` is asked (one call). An agent without the key: a count that rose."""
        count = getattr(rows, "alerts_firing", None)
        if count is None:
            if not rows:
                return
            count = rows[0].get("alerts_firing") or 0
        key = getattr(rows, "alerts_firing_key", None)
        before = self.counts.get(server)
        self.counts[server] = count
        if not count:
            self.known[server] = set()  # nothing fires: what fires next is new, even if it fired before
            self.keys[server] = key
            return
        changed = key != self.keys.get(server) if key is not None else (before is None or count > before)
        if changed or server not in self.known:
            task = self.asking.get(server)
            if task is None or task.done:
                self.keys[server] = key  # else kept: the next reading asks again
                self.asking[server] = (
                    ServerOp(self.view, server, f"alerts {server}",
                             lambda ctx: alert_service.alerts(ctx.transport)["alerts"], runner=self.runner)
                    .success(lambda alerts, s=server: self.firing_read(s, alerts)).run())

    def firing_read(self, server: str, alerts: list) -> None:
        """A server's alerts as read (here or by the Alerts view): announce what fires that did not."""
        now = firing_set(alerts)
        before = self.known.get(server)
        self.known[server] = now
        if before is None:
            return  # the baseline
        new = sorted(now - before)
        if not new:
            return
        named = ", ".join(f"{rule}{' (' + model + ')' if model else ''}" for rule, model in new)
        title = f"{server}: {len(new)} alert{'s' if len(new) != 1 else ''} firing"
        self.announce(title, named, server, new[0][0])

    def announce(self, title: str, text: str, server: str, rule: str) -> None:
        if QSystemTrayIcon.isSystemTrayAvailable():
            if self.tray is None:
                self.tray = QSystemTrayIcon(self.icon, self) if self.icon is not None else QSystemTrayIcon(self)
                self.tray.messageClicked.connect(lambda: self.show_alerts(*self.last))
                self.tray.show()
            self.tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Warning, TRAY_MS)
        else:
            self.banner.show_message("error", f"{title}: {text}", "Show",
                                     lambda s=server, r=rule: (self.banner.clear(), self.show_alerts(s, r)))
        self.last = (server, rule)
        self.notified.emit(title, text)
