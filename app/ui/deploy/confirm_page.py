"""Page 2 of the deploy dialog: what the deploy changes (versions, metrics, data set, code, params)."""
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QFormLayout, QHeaderView, QLabel, QLineEdit, QMessageBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.deploy.release_diff import value as value_text
from app.ui.errors import summary

BETTER = QColor("#1b7f3b")
WORSE = QColor("#b3261e")
CHANGED_STYLE = "background: #fff3cd; color: #5c4300; border: 1px solid #e0b84c; border-radius: 3px; padding: 3px;"
PRODUCTION_STYLE = "background: #b3261e; color: white; border-radius: 3px; padding: 2px 6px; font-weight: bold;"


class ConfirmPage(QWidget):
    """Filled by `show_plan(plan, environment)`; the dialog owns the Deploy button."""

    def __init__(self, server: str, parent=None):
        super().__init__(parent)
        self.server = server
        self.plan = None
        self.environment = ""
        layout = QVBoxLayout(self)
        self.version = QLabel("Asking the server which version is current…")
        self.version.setObjectName("versionLabel")
        self.version.setStyleSheet("font-size: 16pt; font-weight: bold;")
        self.version.setWordWrap(True)
        self.target = QLabel()
        self.target.setObjectName("targetLabel")
        self.target.setTextFormat(Qt.TextFormat.RichText)
        self.notice = QLabel()
        self.notice.setObjectName("planNotice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(CHANGED_STYLE)
        self.notice.hide()
        self.metrics = QTableWidget(0, 4)
        self.metrics.setObjectName("metricsTable")
        self.metrics.setHorizontalHeaderLabels(["Metric", "Current", "New", "Change"])
        self.metrics.verticalHeader().hide()
        self.metrics.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.metrics.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        form = QFormLayout()
        self.dataset = _value_label("datasetLabel")
        self.code = _value_label("codeLabel")
        self.params = _value_label("paramsLabel")
        form.addRow("Data set:", self.dataset)
        form.addRow("Code:", self.code)
        form.addRow("Parameters:", self.params)
        self.reason = reason_field()
        form.addRow("Reason:", self.reason)
        layout.addWidget(self.version)
        layout.addWidget(self.target)
        layout.addWidget(self.notice)
        layout.addWidget(QLabel("Metrics (from the bundles' [training] tables):"))
        layout.addWidget(self.metrics, 1)
        layout.addLayout(form)

    @property
    def production(self) -> bool:
        return self.environment.strip().lower() in ("production", "prod")

    def show_waiting(self) -> None:
        self.plan = None
        self.version.setText("Asking the server which version is current…")
        self.notice.hide()

    def show_failure(self, error: BaseException) -> None:
        self.plan = None
        self.version.setText(f"Could not ask {self.server} what is deployed")
        self.notice.setText(summary(error))
        self.notice.show()

    def show_plan(self, plan, environment: str, fits: tuple[str, str | None] | None = None) -> None:
        """`fits`: what the bundle's profile needs against what the server has, and a warning when it
        cannot hold it (None when the bundle was never profiled)."""
        self.plan, self.environment = plan, environment or ""
        self.version.setText(plan.version_text)
        env = self.environment or "no environment set"
        where = f' <span style="{PRODUCTION_STYLE}">&nbsp;PRODUCTION&nbsp;</span>' if self.production else f" ({env})"
        self.target.setText(f"to server <b>{self.server}</b>{where}")
        notes = []
        if plan.same_version:
            notes.append(f"{plan.model} {plan.new_version} is already current on {self.server}: if the content is "
                         f"identical nothing changes; if it differs, the server refuses it (give it a new version).")
        elif plan.new_version in plan.known_versions:
            notes.append(f"{plan.model} {plan.new_version} is already on {self.server} (not current): the server "
                         f"switches back to it if the content is identical, and refuses it otherwise.")
        if plan.dataset.changed and not plan.first_deploy:
            notes.append("Trained on a different data set than the current version (see below).")
        if fits is not None:
            line, warning = fits
            notes.append(line[0].upper() + line[1:] + ".")
            if warning:
                notes.append(f"Warning: {warning}.")
        self.notice.setText("\n".join(notes))
        self.notice.setVisible(bool(notes))
        self._fill_metrics(plan)
        self._fill_dataset(plan)
        code = plan.code_commit
        self.code.setText(_arrow(code.old, code.new, plan.first_deploy) if code.new or code.old else "not recorded")
        self.code.setStyleSheet(CHANGED_STYLE if code.changed and not plan.first_deploy else "")
        if plan.first_deploy:
            self.params.setText("first deploy: nothing to compare")
        elif plan.params:
            self.params.setText("\n".join(f"{p.name}: {value_text(p.old)} → {value_text(p.new)}"
                                          for p in plan.params))
        else:
            self.params.setText("unchanged")
        self.params.setStyleSheet(CHANGED_STYLE if plan.params and not plan.first_deploy else "")

    def _fill_metrics(self, plan) -> None:
        old = plan.old_version or "—"
        self.metrics.setHorizontalHeaderLabels(["Metric", f"Current ({old})", f"New ({plan.new_version})", "Change"])
        self.metrics.setRowCount(len(plan.metrics))
        for row, m in enumerate(plan.metrics):
            change = "" if plan.first_deploy else ("new" if m.old is None else "removed" if m.new is None
                                                   else _signed(m.delta) if m.delta is not None
                                                   else ("changed" if m.changed else "same"))
            cells = [m.name, value_text(m.old), value_text(m.new), change]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if col == 3 and m.improved is not None:
                    item.setForeground(QBrush(BETTER if m.improved else WORSE))
                    item.setToolTip("better" if m.improved else "worse")
                self.metrics.setItem(row, col, item)
        if not plan.metrics:
            self.metrics.setRowCount(1)
            self.metrics.setItem(0, 0, QTableWidgetItem("no metrics recorded"))

    def _fill_dataset(self, plan) -> None:
        d = plan.dataset
        new = _dataset(d.new_dataset, d.new_sha256)
        if plan.first_deploy:
            self.dataset.setText(new)
            self.dataset.setStyleSheet("")
        elif d.changed:
            extra = " (same data, renamed)" if d.same_data_renamed else ""
            self.dataset.setText(f"CHANGED{extra}: {_dataset(d.old_dataset, d.old_sha256)} → {new}")
            self.dataset.setStyleSheet(CHANGED_STYLE + " font-weight: bold;")
        else:
            self.dataset.setText(f"unchanged: {new}")
            self.dataset.setStyleSheet("")


def reason_field() -> QLineEdit:
    """Why the operator makes this change: kept in the audit log (Berth may require one for production)."""
    edit = QLineEdit()
    edit.setObjectName("reasonEdit")
    edit.setPlaceholderText("why (kept in the audit log; may be required on production servers)")
    edit.setMaxLength(500)
    return edit


def add_reason(box: QMessageBox) -> QLineEdit:
    """A reason field under a question's texts, full width (QMessageBox lays out in a grid)."""
    box.reason = reason_field()
    grid = box.layout()
    grid.addWidget(box.reason, grid.rowCount(), 0, 1, grid.columnCount())
    return box.reason


def _value_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _dataset(name, sha) -> str:
    if not name and not sha:
        return "not recorded"
    return f"{name or '?'} (sha256 {sha[:12]}…)" if sha else f"{name} (no sha256)"


def _arrow(old, new, first: bool) -> str:
    if first or old == new:
        return value_text(new)
    return f"{value_text(old)} → {value_text(new)}"


def _signed(delta) -> str:
    if not delta:
        return "same"
    return f"{delta:+.4g}"
