"""The job dialog: Add (every field of `berth job add`) or Edit (what `berth job edit` can change:
schedule, zone, pattern, version). Nothing is judged here: the agent validates, exactly as for the
CLI, and its one-line refusal is shown in the dialog, which stays open to be corrected."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QSizePolicy,
                               QStackedWidget, QVBoxLayout, QWidget)

from app.errors import one_line
from app.ui.deploy.confirm_page import reason_field
from app.ui.model.jobs_tables import schedule_fields

FOLLOW = ""  # the version combo's "follow current" entry


def _edit(name: str, text: str = "", placeholder: str = "") -> QLineEdit:
    edit = QLineEdit(text)
    edit.setObjectName(name)
    edit.setPlaceholderText(placeholder)
    return edit


class JobDialog(QDialog):
    """Signals:
        submitted(dict request, str reason): Save was clicked; the view runs the change and calls
        `failed(error)` (shown here) or `accept()`.
    """

    submitted = Signal(dict, str)

    def __init__(self, server: str, model: str, versions: list[str], job: dict | None = None, parent=None):
        super().__init__(parent)
        self.job = job
        self.adding = job is None
        self.setWindowTitle(f"Add a job to {model} on {server}" if self.adding else
                            f"Edit job {job['name']} of {model} on {server}")
        kind, expression, tz = schedule_fields(job["schedule"]) if job else ("every", "1h", "UTC")
        form = QFormLayout()
        self.name_edit = _edit("jobNameEdit", placeholder="lower-case letters, digits and -")
        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("scheduleKind")
        self.kind_combo.addItem("every", "every")
        self.kind_combo.addItem("cron", "cron")
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(kind))
        self.schedule_edit = _edit("scheduleEdit", expression, "10m, 1h, 1d — or a cron expression: 30 2 * * *")
        self.tz_edit = _edit("tzEdit", tz, "an IANA zone such as Europe/Vienna")
        self.version_combo = QComboBox()
        self.version_combo.setObjectName("versionCombo")
        self.version_combo.addItem("follow current", FOLLOW)
        for v in reversed(versions):
            self.version_combo.addItem(v, v)
        pinned = (job or {}).get("version")
        if pinned and self.version_combo.findData(pinned) < 0:
            self.version_combo.addItem(pinned, pinned)
        self.version_combo.setCurrentIndex(max(0, self.version_combo.findData(pinned or FOLLOW)))
        source = (job or {}).get("input") or {"kind": "dir", "pattern": "*"}
        self.pattern_edit = _edit("patternEdit", source.get("pattern") or "", "*.csv (default: every file)")
        self.pattern_edit.setEnabled(source.get("kind") == "dir")
        if self.adding:
            form.addRow("Name", self.name_edit)
        form.addRow("Schedule", self.kind_combo)
        form.addRow("", self.schedule_edit)
        form.addRow("Time zone", self.tz_edit)
        if self.adding:
            self._add_source_rows(form)
        else:
            form.addRow("Input", QLabel(self._source_text(source)))
            form.addRow("Pattern", self.pattern_edit)
            form.addRow("Output", QLabel("%s → %s (the input and output are not editable: remove the job and add "
                                         "it again)" % (job["output"]["url"], job["output"]["table"])))
        form.addRow("Version", self.version_combo)
        self.reason = reason_field()
        form.addRow("Reason", self.reason)
        self.error_label = QLabel()
        self.error_label.setObjectName("jobDialogError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b3261e;")
        self.error_label.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setText("Add job" if self.adding else "Save")
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.resize(620, self.sizeHint().height())

    def _add_source_rows(self, form: QFormLayout) -> None:
        self.source_combo = QComboBox()
        self.source_combo.setObjectName("sourceKind")
        self.source_combo.addItem("an inbox folder on the server", "dir")
        self.source_combo.addItem("a SQLite query on the server", "db")
        self.source_stack = QStackedWidget()
        folder, query = QWidget(), QWidget()
        f1, f2 = QFormLayout(folder), QFormLayout(query)
        for f in (f1, f2):
            f.setContentsMargins(0, 0, 0, 0)
        self.input_dir_edit = _edit("inputDirEdit", placeholder="/absolute/folder/on/the/server")
        f1.addRow("Folder", self.input_dir_edit)
        f1.addRow("Pattern", self.pattern_edit)
        self.input_db_edit = _edit("inputDbEdit", placeholder="sqlite:///ABSOLUTE/PATH.db")
        self.input_sql_edit = _edit("inputSqlEdit", placeholder="SELECT id, ... FROM ...")
        self.watermark_edit = _edit("watermarkEdit", placeholder="a column that only grows (id)")
        f2.addRow("Database", self.input_db_edit)
        f2.addRow("Query", self.input_sql_edit)
        f2.addRow("Watermark", self.watermark_edit)
        self.source_stack.addWidget(folder)
        self.source_stack.addWidget(query)
        self.source_combo.currentIndexChanged.connect(self._show_source)
        self._show_source(0)
        self.output_edit = _edit("outputEdit", placeholder="sqlite:///ABSOLUTE/PATH.db (on the server)")
        self.table_edit = _edit("tableEdit", placeholder="a plain identifier: scores")
        form.addRow("Input", self.source_combo)
        form.addRow("", self.source_stack)
        form.addRow("Output", self.output_edit)
        form.addRow("Table", self.table_edit)

    def _show_source(self, index: int) -> None:
        """The stack as tall as the fields of the input chosen (not of the tallest)."""
        for i in range(self.source_stack.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            self.source_stack.widget(i).setSizePolicy(policy, policy)
        self.source_stack.setCurrentIndex(index)
        self.source_stack.adjustSize()

    @staticmethod
    def _source_text(source: dict) -> str:
        if source.get("kind") == "dir":
            return f"inbox folder {source.get('path')}"
        return f"query on {source.get('url')} (watermark {source.get('watermark')})"

    def request(self) -> dict:
        """The job_add or job_edit request the fields say (as the CLI builds it)."""
        schedule = {self.kind_combo.currentData(): self.schedule_edit.text().strip()}
        version = self.version_combo.currentData() or None
        tz = self.tz_edit.text().strip() or "UTC"
        if not self.adding:
            request = {"schedule": schedule, "tz": tz, "version": version, "follow_current": version is None}
            if self.pattern_edit.isEnabled():
                request["pattern"] = self.pattern_edit.text().strip() or "*"
            return request
        if self.source_combo.currentData() == "dir":
            source = {"kind": "dir", "path": self.input_dir_edit.text().strip(),
                      "pattern": self.pattern_edit.text().strip() or "*"}
        else:
            source = {"kind": "db", "url": self.input_db_edit.text().strip(), "sql": self.input_sql_edit.text().strip(),
                      "watermark": self.watermark_edit.text().strip()}
        return {"schedule": schedule, "tz": tz, "input": source, "version": version,
                "output": {"url": self.output_edit.text().strip(), "table": self.table_edit.text().strip()}}

    def job_name(self) -> str:
        return self.name_edit.text().strip() if self.adding else self.job["name"]

    def _save(self) -> None:
        self.error_label.hide()
        self.save_button.setEnabled(False)
        self.submitted.emit(self.request(), self.reason.text().strip())

    def failed(self, error: BaseException) -> None:
        """The agent (or the workspace's reason rule) refused: its line here; nothing was changed."""
        self.save_button.setEnabled(True)
        self.error_label.setText(one_line(error))
        self.error_label.show()
