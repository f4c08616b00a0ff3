"""An admin's editor of a server's policy: the grants as a table, the production flag, and before
saving the diff (what will be granted, revoked, changed). Saving sends each change as its own
audited agent command (`policy_grant`, `policy_revoke`, `policy_set`), the same as the CLI; the
agent checks the role again, so a non-admin's save is refused there too."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QHBoxLayout, QHeaderView, QLabel, QPlainTextEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from app.agent.layout import AgentError
from app.agent.policy import check_principal, check_scope
from app.deploy import policy

from app.ui.errors import ErrorBanner
from app.ui.operations import ServerOp


class PolicyDialog(QDialog):
    """Signals: saved(str server): the policy changed on the server."""

    saved = Signal(str)

    def __init__(self, runner, server: str, parent=None):
        super().__init__(parent)
        self.runner, self.server = runner, server
        self.shown: dict | None = None  # the policy as the server sent it
        self.pending: list[tuple] = []
        self._task = None
        self.setObjectName("policyDialog")
        self.setWindowTitle(f"Policy of {server}")
        self.resize(640, 520)
        self.where = QLabel("Reading the policy…")
        self.where.setWordWrap(True)
        self.banner = ErrorBanner()
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("grantsTable")
        self.table.setHorizontalHeaderLabels(["User or @group", "Model (* = every model)", "Role"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(self._edited)
        add = QPushButton("Add grant")
        add.setObjectName("addGrant")
        add.clicked.connect(lambda: self.add_row("", "*", "viewer"))
        remove = QPushButton("Remove selected")
        remove.setObjectName("removeGrant")
        remove.clicked.connect(self._remove_selected)
        self.production = QCheckBox("Production server: deploy, roll back and experiments need the releaser role")
        self.production.setObjectName("productionCheck")
        self.production.toggled.connect(self._edited)
        self.diff = QPlainTextEdit()
        self.diff.setObjectName("policyDiff")
        self.diff.setReadOnly(True)
        self.diff.setMaximumHeight(130)
        self.save_button = QPushButton("Save changes")
        self.save_button.setObjectName("savePolicy")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self.save)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)

        rows = QHBoxLayout()
        rows.addWidget(add)
        rows.addWidget(remove)
        rows.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.save_button)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.where)
        layout.addWidget(self.banner)
        layout.addWidget(self.table, 1)
        layout.addLayout(rows)
        layout.addWidget(self.production)
        layout.addWidget(QLabel("Changes to save (each is audited as policy.changed, here and on the server):"))
        layout.addWidget(self.diff)
        layout.addLayout(bottom)
        self.load()

    def load(self) -> None:
        self._task = (ServerOp(self, self.server, f"policy show {self.server}", lambda ctx: policy.show(ctx.transport))
                      .success(self._loaded).with_banner(self.banner, "Cannot read the policy: ").run())

    def _loaded(self, shown: dict) -> None:
        self.shown = shown
        state = {"none": "no policy file yet: the root's owner is admin, everyone else a viewer",
                 "trusted": "trusted", "untrusted": f"NOT TRUSTED (only viewer actions): {shown['untrusted']}"}
        self.where.setText(f"{shown['path']}: {state[shown['state']]}")
        self.table.setRowCount(0)
        for who, grants in sorted(shown["roles"].items()):
            for scope, role in sorted(grants.items()):
                self.add_row(who, scope, role)
        self.production.blockSignals(True)
        self.production.setChecked(bool(shown["production"]))
        self.production.blockSignals(False)
        self._edited()

    def add_row(self, who: str, scope: str, role: str) -> None:
        row = self.table.rowCount()
        blocked = self.table.blockSignals(True)  # the row is whole before it counts as an edit
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(who))
        self.table.setItem(row, 1, QTableWidgetItem(scope))
        self.table.blockSignals(blocked)
        combo = QComboBox()
        combo.addItems(policy.ROLES)
        combo.setCurrentText(role)
        combo.currentTextChanged.connect(self._edited)
        self.table.setCellWidget(row, 2, combo)
        self._edited()

    def _remove_selected(self) -> None:
        for row in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(row)
        self._edited()

    def edited_policy(self) -> dict:
        """The table as a policy; a bad name or model is an AgentError naming it (checked again by the agent)."""
        roles: dict = {}
        for row in range(self.table.rowCount()):
            who = (self.table.item(row, 0).text() if self.table.item(row, 0) else "").strip()
            scope = (self.table.item(row, 1).text() if self.table.item(row, 1) else "").strip() or "*"
            if not who:
                continue  # a row being filled in
            check_principal(who)
            check_scope(scope)
            if scope in roles.get(who, {}):
                raise AgentError(f"{who} is listed twice for {scope}: keep one row", "usage")
            roles.setdefault(who, {})[scope] = self.table.cellWidget(row, 2).currentText()
        return {"production": self.production.isChecked(), "roles": roles}

    def _edited(self, *_) -> None:
        if self.shown is None:
            return
        try:
            self.pending = policy.edits(self.shown, self.edited_policy())
        except AgentError as e:
            self.pending = []
            self.diff.setPlainText(f"Cannot save: {e}")
            self.save_button.setEnabled(False)
            return
        self.diff.setPlainText("\n".join(policy.describe(e) for e in self.pending) or "No changes.")
        self.save_button.setEnabled(bool(self.pending))

    def save(self) -> None:
        edits = list(self.pending)
        self.save_button.setEnabled(False)

        def work(ctx):
            for edit in edits:
                policy.apply(ctx.transport, ctx.workspace.audit, edit)
            return policy.show(ctx.transport)

        self._task = (ServerOp(self, self.server, f"policy edit {self.server}", work)
                      .success(self._saved).failure(lambda e: self.load())
                      .with_banner(self.banner, "The server did not take the policy: ").run())

    def _saved(self, shown: dict) -> None:
        self.banner.clear()
        self._loaded(shown)
        self.saved.emit(self.server)
