"""Page 3 of the deploy dialog: each step with its state and duration, the upload (bytes, speed,
time left), the installer log as it streams, and the outcome."""
import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFontDatabase
from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from app.deploy.progress import STEP_LABELS

from app.ui.icons import icon

STEPS = ["check", "connect", "upload", "assemble", "venv", "install", "start", "health", "switch",
         "stop_previous", "prune", "done"]
STATE_LOOK = {  # state: (text, icon, color)
    "pending": ("pending", "", "#7a7a7a"),
    "running": ("running…", "start", "#1a5fb4"),
    "done": ("done", "ok", "#1b7f3b"),
    "skipped": ("not needed", "", "#7a7a7a"),
    "failed": ("failed", "error", "#b3261e"),
    "cancelled": ("cancelled", "cancel", "#8a5a00"),
    "not_run": ("not run", "", "#7a7a7a"),
}
MB = 1_000_000


class ProgressPage(QWidget):
    """Fed with Progress values by the dialog (`show_progress`), then `show_success` or
    `show_failure`.

    Signals:
        details_requested(): the operator clicked Details… under a failure
    """

    details_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: dict[str, QTreeWidgetItem] = {}
        self.started: dict[str, float] = {}
        self.current: str | None = None
        layout = QVBoxLayout(self)
        self.steps = QTreeWidget()
        self.steps.setObjectName("stepList")
        self.steps.setHeaderLabels(["Step", "State", "Time", "Detail"])
        self.steps.setRootIsDecorated(False)
        for step in STEPS:
            self._add_step(step)
        for col, width in ((0, 210), (1, 100), (2, 60)):
            self.steps.setColumnWidth(col, width)
        upload = QGroupBox("Upload")
        row = QVBoxLayout(upload)
        self.upload_bar = QProgressBar()
        self.upload_bar.setObjectName("uploadBar")
        self.upload_bar.setRange(0, 1000)
        self.upload_bar.setValue(0)
        self.upload_bar.setFormat("waiting")
        self.upload_label = QLabel("Waiting for the bundle check…")
        self.upload_label.setObjectName("uploadLabel")
        row.addWidget(self.upload_bar)
        row.addWidget(self.upload_label)
        log_box = QGroupBox("Installer log (venv, pip)")
        log_row = QVBoxLayout(log_box)
        self.pip_log = QPlainTextEdit()
        self.pip_log.setObjectName("pipLog")
        self.pip_log.setReadOnly(True)
        self.pip_log.setMaximumBlockCount(5000)
        self.pip_log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.pip_log.setPlaceholderText("pip's output appears here while the requirements install.")
        log_row.addWidget(self.pip_log)
        outcome_row = QHBoxLayout()
        self.outcome_icon = QLabel()
        self.outcome = QLabel()
        self.outcome.setObjectName("outcome")
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QPushButton("Details…")
        self.details_button.setObjectName("detailsButton")
        self.details_button.hide()
        self.details_button.clicked.connect(self.details_requested)
        outcome_row.addWidget(self.outcome_icon)
        outcome_row.addWidget(self.outcome, 1)
        outcome_row.addWidget(self.details_button)
        layout.addWidget(self.steps, 3)
        layout.addWidget(upload)
        layout.addWidget(log_box, 2)
        layout.addLayout(outcome_row)
        self.clock = QTimer(self)
        self.clock.setInterval(250)
        self.clock.timeout.connect(self._tick)

    # -- fed by the dialog -----------------------------------------------------------------------
    def show_progress(self, p) -> None:
        if p.line is not None:
            self.pip_log.appendPlainText(p.line)
            return
        if p.step not in self.items:
            self._add_step(p.step, before="done")
        if p.step != self.current:
            self._enter(p.step)
        if p.message:
            self.items[p.step].setText(3, p.message)
            self.items[p.step].setToolTip(3, p.message)
        if p.step == "upload":
            self._show_upload(p)

    def show_success(self, message: str) -> None:
        self._finish_current("done")
        self._set_state("done", "done")
        self._skip_pending()
        self._outcome("ok", message, "#1b7f3b")

    def show_failure(self, message: str, cancelled: bool, has_details: bool) -> None:
        self._finish_current("cancelled" if cancelled else "failed")
        for step in self.items:
            if self.state(step) == "pending":
                self._set_state(step, "not_run")
        self._outcome("cancel" if cancelled else "error", message, "#8a5a00" if cancelled else "#b3261e")
        self.details_button.setVisible(has_details)
        if self.upload_bar.format() == "waiting" or cancelled:
            self.upload_bar.setFormat("cancelled" if cancelled else "not sent")

    def state(self, step: str) -> str:
        return self.items[step].data(1, Qt.ItemDataRole.UserRole) if step in self.items else ""

    # -- inside -----------------------------------------------------------------------------------
    def _add_step(self, step: str, before: str | None = None) -> None:
        item = QTreeWidgetItem([STEP_LABELS.get(step, step), "", "", ""])
        item.setData(0, Qt.ItemDataRole.UserRole, step)
        if before in self.items:
            self.steps.insertTopLevelItem(self.steps.indexOfTopLevelItem(self.items[before]), item)
        else:
            self.steps.addTopLevelItem(item)
        self.items[step] = item
        self._set_state(step, "pending")

    def _set_state(self, step: str, state: str) -> None:
        text, icon_name, color = STATE_LOOK[state]
        item = self.items[step]
        item.setData(1, Qt.ItemDataRole.UserRole, state)
        item.setText(1, text)
        item.setIcon(1, icon(icon_name) if icon_name else icon(""))
        brush = QBrush(QColor(color))
        item.setForeground(0, brush if state != "pending" else QBrush(QColor("#7a7a7a")))
        item.setForeground(1, brush)

    def _enter(self, step: str) -> None:
        self._finish_current("done")
        order = [self.steps.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                 for i in range(self.steps.topLevelItemCount())]
        for earlier in order[: order.index(step)]:  # steps the server did not need (no requirements, …)
            if self.state(earlier) == "pending":
                self._set_state(earlier, "skipped")
        self.current = step
        self.started[step] = time.monotonic()
        self._set_state(step, "running")
        self.steps.scrollToItem(self.items[step])
        if not self.clock.isActive():
            self.clock.start()

    def _finish_current(self, state: str) -> None:
        if self.current is None:
            return
        self._tick()
        self._set_state(self.current, state)
        if self.current == "upload" and state == "done":
            self.upload_bar.setValue(1000)
        self.current = None
        self.clock.stop()

    def _skip_pending(self) -> None:
        for step in self.items:
            if self.state(step) == "pending":
                self._set_state(step, "skipped")

    def _tick(self) -> None:
        if self.current is not None:
            seconds = time.monotonic() - self.started[self.current]
            self.items[self.current].setText(2, f"{seconds:.1f} s")

    def _show_upload(self, p) -> None:
        total = p.total or 0
        done = p.done or 0
        if total <= 0:
            self.upload_bar.setValue(1000)
            self.upload_bar.setFormat("nothing to send")
            self.upload_label.setText(p.message or "The server already has every file of this bundle.")
            return
        self.upload_bar.setValue(int(1000 * done / total))
        self.upload_bar.setFormat(f"{100 * done / total:.0f} %")
        text = f"{_size(done)} of {_size(total)}"
        if p.rate:
            text += f" · {p.rate / MB:.1f} MB/s" if p.rate >= MB / 10 else f" · {p.rate / 1000:.1f} kB/s"
            if done < total:
                text += f" · {_eta((total - done) / p.rate)} left"
        self.upload_label.setText(text)

    def _outcome(self, icon_name: str, message: str, color: str) -> None:
        self.outcome_icon.setPixmap(icon(icon_name).pixmap(22, 22))
        self.outcome.setText(message)
        self.outcome.setStyleSheet(f"color: {color}; font-weight: bold;")


def _size(n: int) -> str:
    if n >= 1000 * MB:
        return f"{n / (1000 * MB):.2f} GB"
    if n >= MB:
        return f"{n / MB:.1f} MB"
    if n >= 1000:
        return f"{n / 1000:.1f} kB"
    return f"{n} B"


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"
