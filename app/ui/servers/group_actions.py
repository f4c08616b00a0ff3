"""One action on several servers or models picked in the fleet tree: ONE confirmation that lists
them all, then each one runs through its server's own lane (ServerOp: a server's work stays in
order, different servers side by side up to the pool's bound), and one window shows how each went.

The work per server is the single-server one (Workspace.deploy / Workspace.change, the same calls
as the deploy dialog and the model page), so a production reason is asked for and enforced alike.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLabel, QMessageBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

from app.deploy.progress import STEP_LABELS
from app.ui.deploy.confirm_page import add_reason
from app.ui.errors import summary
from app.ui.operations import ServerOp

ACTIONS = {"rollback": "Roll back", "start": "Start", "stop": "Stop"}
LISTED = 25  # names written out in the question; the rest are in its details


def confirm_many(parent, title: str, question: str, targets: list[str], ok_text: str, on_yes,
                 reason: bool = True) -> QMessageBox:
    """A question naming every target; on_yes(reason text) when confirmed. Cancel is the default."""
    shown = "\n".join(f"• {t}" for t in targets[:LISTED])
    if len(targets) > LISTED:
        shown += f"\n… and {len(targets) - LISTED} more (Show Details)"
    box = QMessageBox(QMessageBox.Icon.Question, title, question, QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("groupConfirm")
    box.setInformativeText(shown)
    if len(targets) > LISTED:
        box.setDetailedText("\n".join(targets))
    box.targets = list(targets)
    ok = box.addButton(ok_text, QMessageBox.ButtonRole.AcceptRole)
    box.confirm_button = ok
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)  # Enter never changes N servers
    if reason:
        add_reason(box)
    box.finished.connect(lambda _r, b=box: on_yes(b.reason.text().strip() if reason else "")
                         if b.clickedButton() is b.confirm_button else None)
    box.open()
    return box


def deploy_work(path: Path, reason: str):
    """What the deploy dialog runs once confirmed, for one server."""
    def work(ctx):
        deploy = ctx.workspace.deploy(ctx.transport, path, reason=reason, cancel=ctx.task.cancel_event)
        ctx.drive(deploy.run())
        return deploy.result or {}
    return work


def change_work(action: str, model: str, reason: str):
    """What the model page runs for Roll back (to the release before), Start or Stop."""
    def work(ctx):
        return ctx.drive(ctx.workspace.change(ctx.transport, action, model, reason=reason))
    return work


class GroupRun(QDialog):
    """Runs `work` on each (server, label, work) and shows each outcome as it arrives.

    Signals:
        changed(str server): that server's part ended (ok or not): refresh what it changed
        done(): every part ended
    """

    changed = Signal(str)
    done = Signal()

    def __init__(self, runner, title: str, parts: list[tuple[str, str, object]], parent=None):
        super().__init__(parent)
        self.runner = runner
        self.setWindowTitle(title)
        self.resize(640, 420)
        self.outcomes: dict[int, str] = {}
        self.failed = 0
        self.summary = QLabel(f"{title}: 0 of {len(parts)} done")
        self.summary.setObjectName("groupSummary")
        self.table = QTableWidget(len(parts), 2)
        self.table.setObjectName("groupTable")
        self.table.setHorizontalHeaderLabels(["Server / model", "Outcome"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().resizeSection(0, 200)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.tasks = []
        for row, (server, label, work) in enumerate(parts):
            self.table.setItem(row, 0, QTableWidgetItem(label))
            self.table.setItem(row, 1, QTableWidgetItem("waiting…"))
            self.tasks.append(ServerOp(self, server, label, work, runner=runner)
                              .progress(lambda p, r=row: self._set(r, _progress_text(p)))
                              .success(lambda result, r=row, s=server: self._ended(r, s, _ok_text(result), False))
                              .failure(lambda e, r=row, s=server: self._ended(r, s, f"failed: {summary(e)}", True))
                              .run())

    def _set(self, row: int, text: str) -> None:
        if row not in self.outcomes:
            self.table.item(row, 1).setText(text)

    def _ended(self, row: int, server: str, text: str, failed: bool) -> None:
        self.outcomes[row] = text
        self.failed += failed
        cell = self.table.item(row, 1)
        cell.setText(text)
        cell.setForeground(Qt.GlobalColor.red if failed else Qt.GlobalColor.darkGreen)
        n = len(self.tasks)
        self.summary.setText(f"{self.windowTitle()}: {len(self.outcomes)} of {n} done"
                             + (f", {self.failed} failed" if self.failed else ""))
        self.changed.emit(server)
        if len(self.outcomes) == n:
            self.done.emit()


def _ok_text(result) -> str:
    result = result or {}
    if result.get("already"):
        return "ok (already current; nothing changed)"
    version = result.get("version")
    return f"ok ({version})" if version else "ok"


def _progress_text(p) -> str:
    if getattr(p, "line", None) is not None:
        return "running…"  # a pip or runner log line: the step says more
    return STEP_LABELS.get(getattr(p, "step", ""), getattr(p, "step", "")) or "running…"
