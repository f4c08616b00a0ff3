"""Silence… : how long and why, then `alert_silence` through Workspace.alert_change (audited on
both sides, as `berth alert silence`); a refusal (a bad duration, the agent's one line) stays in
the dialog so the operator can correct it."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout

from app.agent.alertrules import MAX_FOR_S, parse_duration
from app.agent.layout import AgentError
from app.deploy import alerts as alert_service

from app.ui.errors import summary
from app.ui.operations import ServerOp

DURATIONS = ["1h", "2h", "4h", "1d", "7d"]


class SilenceDialog(QDialog):
    """Signals: silenced(str server, str rule, str until) once the server has stored it."""

    silenced = Signal(str, str, str)

    def __init__(self, runner, server: str, rule: str, parent=None):
        super().__init__(parent)
        self.runner, self.server, self.rule = runner, server, rule
        self.setWindowTitle(f"Silence {rule} on {server}")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Send nothing for <b>{rule}</b> on <b>{server}</b> for a while."))
        form = QFormLayout()
        self.duration = QComboBox()
        self.duration.setObjectName("silenceDuration")
        self.duration.setEditable(True)
        self.duration.addItems(DURATIONS)
        self.duration.setCurrentText("2h")
        self.reason = QLineEdit()
        self.reason.setObjectName("silenceReason")
        self.reason.setPlaceholderText("why (kept with the silence and in the audit log)")
        form.addRow("For", self.duration)
        form.addRow("Reason", self.reason)
        layout.addLayout(form)
        self.error = QLabel()
        self.error.setObjectName("silenceError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b3261e;")
        self.error.hide()
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Silence")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def ok_button(self):
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def refuse(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()
        self.ok_button().setEnabled(True)

    def submit(self) -> None:
        """Checked here first with the agent's own code (as the CLI does), then sent."""
        reason = self.reason.text().strip()
        try:
            seconds = parse_duration(self.duration.currentText().strip(), "the duration", 60, MAX_FOR_S * 4)
        except AgentError as e:
            return self.refuse(str(e))
        if not reason:
            return self.refuse("A silence needs a reason: say why (it is kept with the silence and audited).")
        self.ok_button().setEnabled(False)
        self.error.hide()
        rule = self.rule

        def work(ctx):
            found = alert_service.find(ctx.transport, rule)
            return ctx.workspace.alert_change(ctx.transport, "silence", rule, found["model"],
                                              {"for": seconds, "reason": reason}, reason=reason)

        (ServerOp(self, self.server, f"alert silence {rule}", work, runner=self.runner)
         .success(self._done).failure(lambda e: self.refuse(summary(e))).run())

    def _done(self, result: dict) -> None:
        self.silenced.emit(self.server, self.rule, result.get("until") or "")
        self.accept()
