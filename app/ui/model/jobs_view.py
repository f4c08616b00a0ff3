"""The Jobs tab of a model's page: its jobs on the server (FAILING and LATE stand out), the selected
job's runs with a chart of rows and errors per run, a preview of the latest rows of its output, and
Run now / Pause / Resume / Edit / Remove / Add. Read every few seconds while the tab is shown, on
the server's thread; every change goes through Workspace.job_change, as `berth job` does (audited
on both sides, the production reason rule), never a second path."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QMessageBox, QPushButton, QSplitter, QVBoxLayout, QWidget)

from app.deploy import jobs as job_service
from app.ui.deploy.confirm_page import add_reason
from app.ui.errors import ErrorBanner
from app.ui.icons import icon
from app.ui.model.jobs_chart import RunsChart
from app.ui.model.jobs_dialog import JobDialog
from app.ui.model.jobs_tables import ROLE_ROW, jobs_model, preview_model, runs_model, set_preview, table
from app.ui.operations import ServerOp
from app.workspace import ReasonRequired

POLL_MS = 3000
RUNS = 30
PREVIEW_ROWS = 20
DONE = {"run": "run {run} started", "pause": "paused", "resume": "resumed", "edit": "edited",
        "remove": "removed (its output database stays)", "add": "added"}


def _titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    label = QLabel(f"<b>{title}</b>")
    layout.addWidget(label)
    layout.addWidget(widget, 1)
    box.title = label
    return box


class JobsView(QWidget):
    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.server = self.model = None
        self.versions: list[str] = []
        self.jobs: list[dict] = []
        self.runs: list[dict] = []
        self.preview: dict = {}
        self.busy = False
        self.selected_name: str | None = None
        self.dialog: JobDialog | None = None
        self.confirmation: QMessageBox | None = None
        self._poll = self._previewing = None  # the Tasks reading, while they run
        self._preview_for = None  # (job, last run, its state) the preview shown was read for

        self.title = QLabel()
        self.title.setObjectName("jobsTitle")
        self.add_button = QPushButton(icon("add"), "Add job…")
        self.refresh_button = QPushButton(icon("refresh"), "Refresh")
        self.refresh_button.clicked.connect(self.poll)
        self.add_button.clicked.connect(self.ask_add)
        self.banner = ErrorBanner()
        self.preview_banner = ErrorBanner()
        self.jobs_model = jobs_model(self)
        self.jobs_table = table(self.jobs_model, "jobsTable")
        self.jobs_table.selectionModel().selectionChanged.connect(self._selected)
        self.buttons = {}
        row = QHBoxLayout()
        for action, text, name in (("run", "Run now", "start"), ("pause", "Pause", "stop"),
                                   ("resume", "Resume", "start"), ("edit", "Edit…", "edit"),
                                   ("remove", "Remove…", "remove")):
            button = QPushButton(icon(name), text)
            button.setObjectName(f"job{action.title()}Button")
            self.buttons[action] = button
            row.addWidget(button)
        self.buttons["run"].clicked.connect(lambda: self.run_change("run"))
        self.buttons["pause"].clicked.connect(lambda: self.run_change("pause"))
        self.buttons["resume"].clicked.connect(lambda: self.run_change("resume"))
        self.buttons["edit"].clicked.connect(self.ask_edit)
        self.buttons["remove"].clicked.connect(self.ask_remove)
        self.message = QLabel()
        self.message.setObjectName("jobsMessage")
        row.addWidget(self.message, 1)

        self.runs_model = runs_model(self)
        self.runs_table = table(self.runs_model, "runsTable")
        self.chart = RunsChart()
        self.results_model, self.errors_model = preview_model(self), preview_model(self)
        self.results_table = table(self.results_model, "resultsPreview")
        self.errors_table = table(self.errors_model, "errorsPreview")
        runs = QSplitter(Qt.Orientation.Horizontal)
        runs.addWidget(_titled("Runs (newest first)", self.runs_table))
        runs.addWidget(self.chart)
        runs.setSizes([620, 380])
        tables = QSplitter(Qt.Orientation.Horizontal)
        self.results_box = _titled("Latest result rows", self.results_table)
        self.errors_box = _titled("Latest error rows", self.errors_table)
        tables.addWidget(self.results_box)
        tables.addWidget(self.errors_box)
        preview = QWidget()
        preview_layout = QVBoxLayout(preview)
        preview_layout.setContentsMargins(0, 0, 0, 0)
        preview_layout.addWidget(self.preview_banner)
        preview_layout.addWidget(tables, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        jobs_box = QWidget()
        jobs_layout = QVBoxLayout(jobs_box)
        jobs_layout.setContentsMargins(0, 0, 0, 0)
        jobs_layout.addWidget(self.jobs_table, 1)
        jobs_layout.addLayout(row)
        for w in (jobs_box, runs, preview):
            split.addWidget(w)
        split.setSizes([150, 300, 250])
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.add_button)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(split, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.update_buttons()

    # -- fed by the model page --------------------------------------------------------------------
    def set_model(self, server: str, model: str) -> None:
        if (server, model) == (self.server, self.model):
            return
        self.server, self.model = server, model
        self.selected_name, self._preview_for = None, None
        self.jobs, self.runs, self.preview = [], [], {}
        self.jobs_model.set_rows([])
        self._show_runs([])
        self._show_preview({})
        self.banner.clear()
        self.preview_banner.clear()
        self.message.clear()
        self.title.setText(f"Jobs of {model} on {server}")
        if self.isVisible():
            self.poll()

    def set_versions(self, versions: list[str]) -> None:
        """The model's releases on the server, oldest first (what a job can be pinned to)."""
        self.versions = list(versions)

    def selected_job(self) -> dict | None:
        return next((j for j in self.jobs if j["name"] == self.selected_name), None)

    def select_job(self, name: str) -> None:
        for row in range(self.jobs_model.rowCount()):
            if self.jobs_model.rows[row]["name"] == name:
                self.jobs_table.selectRow(row)
                return

    # -- reading ----------------------------------------------------------------------------------
    def poll(self) -> None:
        if not self.server or (self._poll is not None and not self._poll.done):
            return  # a slow or dead host: never pile up requests
        server, model, name = self.server, self.model, self.selected_name

        def work(ctx):
            listed = job_service.jobs(ctx.transport, model)
            runs = job_service.runs(ctx.transport, name, RUNS) if any(j["name"] == name for j in listed) else []
            return listed, runs

        self._poll = (ServerOp(self, server, f"jobs {model}", work)
                      .only_if(lambda k=(server, model): k == (self.server, self.model))
                      .success(lambda r, n=name: self._got(r, n))
                      .with_banner(self.banner, "Cannot read the jobs (showing what was read before): ").run())

    def _got(self, result, name) -> None:
        listed, runs = result
        self.banner.clear()
        self.jobs = listed
        if self.jobs_model.set_rows(listed):
            self.jobs_table.resizeColumnsToContents()
        if self.selected_name is None and listed:
            self.selected_name = listed[0]["name"]
        if self.selected_name and self.selected_job() is not None:
            self.select_job(self.selected_name)
        else:
            self.selected_name = None
        if name == self.selected_name:
            self._show_runs(runs)
        elif self.selected_name:
            self.poll_soon()
        self.update_buttons()
        self._read_preview()

    def poll_soon(self) -> None:
        QTimer.singleShot(0, self.poll)

    def _read_preview(self) -> None:
        job = self.selected_job()
        key = (job["name"], job.get("last_run_id"), job.get("last_state")) if job else None
        if key is None or key == self._preview_for or (self._previewing is not None and not self._previewing.done):
            return
        server, model, name = self.server, self.model, job["name"]
        self._previewing = (ServerOp(self, server, f"preview {name}",
                                     lambda ctx: job_service.preview(ctx.transport, name, PREVIEW_ROWS))
                            .only_if(lambda k=(server, model, name): k == (self.server, self.model,
                                                                           self.selected_name))
                            .success(lambda p, k=key: self._got_preview(k, p))
                            .failure(lambda _e, k=key: setattr(self, "_preview_for", k))  # again after the next run
                            .with_banner(self.preview_banner, f"Cannot read the output of job {name}: ").run())

    def _got_preview(self, key, preview: dict) -> None:
        self._preview_for = key
        self.preview_banner.clear()
        self._show_preview(preview)

    def _show_runs(self, runs: list[dict]) -> None:
        self.runs = runs
        if self.runs_model.set_rows(runs):
            self.runs_table.resizeColumnsToContents()
            self.chart.set_runs(runs)

    def _show_preview(self, preview: dict) -> None:
        self.preview = preview
        errors = preview.get("errors") or {}
        set_preview(self.results_model, preview)
        set_preview(self.errors_model, errors)
        self.results_box.title.setText(f"<b>Latest result rows</b> ({len(preview.get('rows') or [])})")
        self.errors_box.title.setText(f"<b>Latest error rows</b> ({len(errors.get('rows') or [])})")
        for view in (self.results_table, self.errors_table):
            view.resizeColumnsToContents()

    def _selected(self, *_args) -> None:
        rows = self.jobs_table.selectionModel().selectedRows()
        name = rows[0].data(ROLE_ROW)["name"] if rows else None
        if name and name != self.selected_name:
            self.selected_name = name
            self._show_runs([])
            self._show_preview({})
            self.preview_banner.clear()
            self._preview_for = None
            self.poll()
        self.update_buttons()

    # -- changes ----------------------------------------------------------------------------------
    def run_change(self, action: str, request: dict | None = None, reason: str = "", name: str | None = None,
                   dialog: JobDialog | None = None) -> None:
        job = self.selected_job()
        name = name or (job["name"] if job else None)
        if self.busy or not self.server or not name:
            return
        server, model = self.server, self.model
        self._set_busy(True)
        self.banner.clear()
        self.message.setText(f"{action}: job {name}…")

        def work(ctx):
            return ctx.workspace.job_change(ctx.transport, action, name, model, request, reason=reason)

        (ServerOp(self, server, f"job {action} {name}", work).ended(lambda: self._set_busy(False))
         .success(lambda r: self._changed(server, action, name, r, dialog))
         .failure(lambda e: self._change_failed(server, action, name, request, e, dialog)).run())

    def _changed(self, server, action, name, result, dialog) -> None:
        if dialog is not None:
            dialog.accept()
        if server == self.server:
            run = (result.get("run") or {}).get("run_id", "")
            self.message.setText(f"job {name}: {DONE[action].format(run=run)}.")
            if action == "add":
                self.selected_name = name
            self.poll_soon()

    def _change_failed(self, server, action, name, request, error, dialog) -> None:
        self.message.clear()
        if dialog is not None:
            dialog.failed(error)
        elif isinstance(error, ReasonRequired):
            self._confirm(f"{action.title()} job {name}", f"{server} needs a reason for this change: "
                          f"{action} job {name} of {self.model}?", action.title(),
                          lambda reason: self.run_change(action, request, reason, name))
        elif server == self.server:
            self.banner.show_error(error, f"{action.title()} of job {name} on {server} failed: ")

    def ask_edit(self) -> None:
        job = self.selected_job()
        if job is not None and not self.busy:
            self._open_dialog(JobDialog(self.server, self.model, self.versions, job, self), "edit", job["name"])

    def ask_add(self) -> None:
        if self.server and not self.busy:
            self._open_dialog(JobDialog(self.server, self.model, self.versions, None, self), "add", None)

    def _open_dialog(self, dialog: JobDialog, action: str, name: str | None) -> None:
        model = self.model

        def submitted(request, reason):
            if action == "add":
                request = dict(request, model=model)
            self.run_change(action, request, reason, name or dialog.job_name(), dialog)
        dialog.submitted.connect(submitted)
        dialog.finished.connect(lambda _r: setattr(self, "dialog", None))
        self.dialog = dialog
        dialog.open()

    def ask_remove(self) -> None:
        job = self.selected_job()
        if job is None or self.busy:
            return
        self._confirm("Remove job", f"Remove job {job['name']} of {self.model} on {self.server}?",
                      "Remove", lambda reason, n=job["name"]: self.run_change("remove", None, reason, n),
                      f"Its definition and run history go; its output ({job['output']['url']}, table "
                      f"{job['output']['table']}) stays as it is.")

    def _confirm(self, title: str, text: str, ok_text: str, on_yes, informative: str = "") -> None:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, self)
        if informative:
            box.setInformativeText(informative)
        box.confirm_button = box.addButton(ok_text, QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        add_reason(box)
        box.finished.connect(lambda _r, b=box: on_yes(b.reason.text().strip())
                             if b.clickedButton() is b.confirm_button else None)
        box.finished.connect(lambda _r: setattr(self, "confirmation", None))
        self.confirmation = box
        box.open()

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.update_buttons()

    def update_buttons(self, *_args) -> None:
        job = self.selected_job()
        ok = job is not None and not self.busy
        self.buttons["run"].setEnabled(ok)
        self.buttons["pause"].setEnabled(ok and not job.get("paused"))
        self.buttons["resume"].setEnabled(ok and bool(job.get("paused")))
        self.buttons["edit"].setEnabled(ok)
        self.buttons["remove"].setEnabled(ok)
        self.add_button.setEnabled(bool(self.server) and not self.busy)

    # -- read only while visible ------------------------------------------------------------------
    def showEvent(self, event):
        super().showEvent(event)
        if not self.timer.isActive():
            self.timer.start()
            self.poll()

    def hideEvent(self, event):
        super().hideEvent(event)
        self.timer.stop()
