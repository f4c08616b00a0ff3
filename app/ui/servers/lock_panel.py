"""The server lock on the server page: free, or held by whom, doing what, since when. A lock held
by an agent that no longer makes progress can be broken, after a confirmation that names the
process it ends (never the default button), with an optional reason for the audit log."""
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from app.deploy.changes import break_lock

from app.ui.deploy.confirm_page import add_reason
from app.ui.operations import ServerOp

HELD_STYLE = "color: #8a5300; font-weight: bold;"


class LockPanel(QWidget):
    """Signals:
        broken(): a Break lock finished (ok or not): the page reads the server's state again
    """

    broken = Signal()

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.server = ""
        self.lock: dict = {}
        self.confirmation: QMessageBox | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("—")
        self.label.setObjectName("lockLabel")
        self.label.setWordWrap(True)
        self.button = QPushButton("Break lock…")
        self.button.setObjectName("breakLockButton")
        self.button.clicked.connect(self.ask)
        self.button.hide()
        row.addWidget(self.label, 1)
        row.addWidget(self.button)

    def show_lock(self, server: str, lock: dict) -> None:
        self.server, self.lock = server, lock
        holder = lock.get("holder") or {}
        if lock.get("held"):
            self.label.setText(f"held by {_describe(holder)}" + ("" if lock.get("holder_alive") else
                                                               " (its process is gone)"))
            self.label.setStyleSheet(HELD_STYLE)
        else:
            self.label.setText("free")
            self.label.setStyleSheet("")
        self.button.setVisible(bool(lock.get("held")))

    def ask(self) -> None:
        holder = self.lock.get("holder") or {}
        box = QMessageBox(QMessageBox.Icon.Warning, "Break the server lock",
                          f"End the Berth agent on {self.server} that holds the lock?\n\n{_describe(holder)}",
                          QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Only when it no longer makes progress: the change it was making is stopped and "
                               "undone as far as it can be, and this is recorded in the audit log.")
        box.confirm_button = box.addButton(f"End pid {holder.get('pid')}", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        add_reason(box)
        box.finished.connect(lambda _r, b=box: self._break(holder.get("pid"), b.reason.text().strip())
                             if b.clickedButton() is b.confirm_button else None)
        self.confirmation = box
        box.open()

    def _break(self, pid, reason: str) -> None:
        server = self.server
        self.button.setEnabled(False)
        (ServerOp(self, server, f"break lock {server}",
                  lambda ctx: break_lock(ctx.transport, ctx.workspace.audit, pid, reason))
         .success(lambda _r: self._done(None)).failure(self._done).run())

    def _done(self, error) -> None:
        self.button.setEnabled(True)
        if error is not None:
            self.label.setText(f"could not break the lock: {error}")
        self.broken.emit()


def _describe(holder: dict) -> str:
    return (f"{holder.get('who', 'someone')} running '{holder.get('what', 'a change')}' since "
            f"{holder.get('since', '?')} (pid {holder.get('pid', '?')})")
