"""The runner's log for the selected model, tailing live: polled every ~2 s on the server's thread,
only while this view is visible; new lines are appended and the view follows the end unless the
operator scrolled up to read."""
from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from app.ui.errors import ErrorBanner
from app.ui.icons import icon
from app.ui.operations import ServerOp

POLL_MS = 2000
TAIL_LINES = 200
MAX_LINES = 5000


def new_lines(old: list[str], new: list[str]) -> list[str]:
    """The lines of `new` (a later tail of the same file) that `old` (an earlier tail) did not have."""
    for k in range(min(len(old), len(new)), 0, -1):
        if old[-k:] == new[:k]:
            return new[k:]
    return new


class LogView(QWidget):
    """Fed with `set_model(server, model)` by the model page."""

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.server = self.model = None
        self.version = None
        self.lines: list[str] = []
        self._task = None
        self.text = QPlainTextEdit()
        self.text.setObjectName("logText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("The runner has not written anything yet.")
        self.source = QLabel()
        self.source.setObjectName("logSource")
        self.follow = QCheckBox("Live")
        self.follow.setChecked(True)
        self.follow.setToolTip(f"Read new lines every {POLL_MS // 1000} s while this tab is open")
        self.follow.toggled.connect(self._sync_timer)
        self.refresh_button = QPushButton(icon("refresh"), "Refresh")
        self.refresh_button.clicked.connect(self.poll)
        self.banner = ErrorBanner()
        top = QHBoxLayout()
        top.addWidget(self.source, 1)
        top.addWidget(self.follow)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.text, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)

    def set_model(self, server: str, model: str) -> None:
        if (server, model) == (self.server, self.model):
            return
        self.server, self.model = server, model
        self.version = None
        self.lines = []
        self.text.clear()
        self.banner.clear()
        self.source.setText(f"Runner log of {model} on {server}")
        if self.isVisible():
            self.poll()

    def poll(self) -> None:
        if not self.server or not self.model or (self._task is not None and not self._task.done):
            return  # a slow or dead host: never pile up requests
        server, model = self.server, self.model
        self._task = (ServerOp(self, server, f"logs {model}",
                               lambda ctx: ctx.transport.agent("logs", {"model": model, "lines": TAIL_LINES}))
                      .only_if(lambda k=(server, model): k == (self.server, self.model))
                      .success(self._got)  # on a failure, what is shown stays; the banner says it is not live
                      .with_banner(self.banner, "Cannot read the log (showing what was read before): ").run())

    def _got(self, result: dict) -> None:
        self.banner.clear()
        version, lines = result.get("version"), list(result.get("lines") or [])
        if version != self.version:
            if self.version is not None:
                self._append([f"── {self.model} {version} is current now: its runner log ──"])
            self.version = version
            self.source.setText(f"Runner log of {self.model} {version or ''} on {self.server}")
            added = lines
        else:
            added = new_lines(self.lines, lines)
        self.lines = lines
        self._append(added)

    def _append(self, lines: list[str]) -> None:
        if not lines:
            return
        bar = self.text.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        keep = bar.value()
        self.text.appendPlainText("\n".join(lines))
        bar.setValue(bar.maximum() if at_end else keep)

    # -- poll only while visible --------------------------------------------------------------
    def _sync_timer(self) -> None:
        if self.isVisible() and self.follow.isChecked():
            if not self.timer.isActive():
                self.timer.start()
                self.poll()
        else:
            self.timer.stop()

    def showEvent(self, event):
        super().showEvent(event)
        self._sync_timer()

    def hideEvent(self, event):
        super().hideEvent(event)
        self.timer.stop()
