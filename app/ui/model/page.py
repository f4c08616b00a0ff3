"""A model's page: a header (name, version, state, endpoint, uptime) with Roll back / Stop / Start,
and tabs Overview / Releases / Predict / Logs / Jobs / Experiment, their actions gated by the user's
role there (RoleGate). Every server call runs on the server's thread; when
the host goes away, the last known data stays on screen under a "stale" banner."""
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QTabWidget, QVBoxLayout, QWidget

from app.deploy import queries
from app.deploy.release_diff import diff_on_server
from app.errors import is_connection_error

from app.ui.deploy.confirm_page import add_reason
from app.ui.errors import ErrorBanner
from app.ui.icons import icon
from app.ui.model.experiment_view import ExperimentView
from app.ui.model.experiment_wiring import ExperimentTab
from app.ui.model.jobs_view import JobsView
from app.ui.model.log_view import LogView
from app.ui.model.overview import ModelHeader, ModelOverview
from app.ui.model.predict_panel import PredictPanel
from app.ui.model.releases_view import ReleasesView
from app.ui.operations import ServerOp
from app.ui.servers.role_gate import RoleGate
from app.ui.tasks import CONNECTED, UNREACHABLE

ACTIONS = {"rollback": "Roll back", "start": "Start", "stop": "Stop"}


class ModelPage(QWidget):
    """Signals:
        changed(str server): a rollback / make current / start / stop finished (ok or not)
    """

    changed = Signal(str)

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.server: str | None = None
        self.model: str | None = None
        self.status: dict = {}
        self.releases: list[dict] = []  # as the agent lists them: oldest deploy first
        self.busy = False
        self.confirmation: QMessageBox | None = None
        self._loading = None  # the Task reading status and releases, while it runs

        self.header = ModelHeader()
        self.header.rollback_requested.connect(self.ask_rollback)
        self.header.stop_requested.connect(lambda: self.run_change("stop"))
        self.header.start_requested.connect(lambda: self.run_change("start"))
        self.roles = RoleGate(self, self.header.role_label, [("rollback", self.header.rollback_button),
                                                             ("stop", self.header.stop_button),
                                                             ("start", self.header.start_button)])
        self.stale_banner = ErrorBanner()
        self.stale_banner.setObjectName("staleBanner")
        self.banner = ErrorBanner()

        self.overview = ModelOverview()
        self.releases_view = ReleasesView(runner)
        self.releases_view.make_current_requested.connect(self.ask_make_current)
        self.releases_view.compare_requested.connect(self.compare)
        self.predict = PredictPanel(runner)
        self.logs = LogView(runner)
        self.jobs = JobsView(runner)
        self.experiment = ExperimentView()
        self.experiment_tab = ExperimentTab(self, self.experiment)
        jobs = self.jobs.buttons
        self.roles.add([("rollback", self.releases_view.make_current_button), ("job_add", self.jobs.add_button),
                        ("job_run", jobs["run"]), ("job_pause", jobs["pause"]), ("job_resume", jobs["resume"]),
                        ("job_edit", jobs["edit"]), ("job_remove", jobs["remove"]),
                        ("experiment_start", self.experiment.start_button),
                        ("experiment_stop", self.experiment.stop_button),
                        ("experiment_stop", self.experiment.promote_button)])  # promote: B becomes current
        self.roles.released.connect(self._role_released)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.overview, "Overview")
        self.tabs.addTab(self.releases_view, icon("rollback"), "Releases")
        self.tabs.addTab(self.predict, icon("predict"), "Predict")
        self.tabs.addTab(self.logs, icon("logs"), "Logs")
        self.tabs.addTab(self.jobs, icon("refresh"), "Jobs")
        self.tabs.addTab(self.experiment, icon("predict"), "Experiment")

        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.stale_banner)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        runner.server_state.connect(self._on_server_state)

    # -- fed by the main window ---------------------------------------------------------------
    def show_model(self, server: str, status: dict) -> None:
        """The operator selected a model, or a fleet refresh brought a fresh status for it."""
        if not status:
            return
        new = (server, status["model"]) != (self.server, self.model)
        if new:
            self.server, self.model = server, status["model"]
            self.releases = []
            self.releases_view.set_releases([])
            self.releases_view.where.model = self.model
            self.overview.set_release(None)
            self.banner.clear()
            self.stale_banner.clear()
            self.header.message.clear()
            self.logs.set_model(server, self.model)
            self.jobs.set_model(server, self.model)
            self.experiment_tab.show_model(server, self.model)
            self.roles.show(server, self.model)
        else:
            self.stale_banner.clear()  # a fresh status: the host answers again
        known = self.current_release()
        self._set_status(status)
        if new or known is None or known["version"] != status.get("version") \
                or known.get("sha256") != status.get("sha256"):
            self.reload()

    def reload(self) -> None:
        """Read the model's status and releases again (on the server's thread)."""
        if not self.server or (self._loading is not None and not self._loading.done):
            return
        server, model = self.server, self.model

        def work(ctx):
            return queries.status(ctx.transport, model), queries.releases(ctx.transport, model)

        self._loading = (ServerOp(self, server, f"releases {model}", work)
                         .only_if(lambda k=(server, model): k == (self.server, self.model))
                         .success(self._loaded).failure(self._load_failed).run())

    def compare(self, old: str, new: str) -> None:
        """What changed from `old` to `new` (`berth diff`), shown below the releases."""
        if not self.server:
            return
        server, model = self.server, self.model

        def work(ctx):
            return diff_on_server(ctx.transport, model, old, new)

        view = self.releases_view
        (ServerOp(self, server, f"diff {model} {old} {new}", work)
         .only_if(lambda k=(server, model, old, new): k == (self.server, self.model) + (view.compared or ()))
         .success(view.diff.show_diff).failure(lambda e: view.diff.show_error(str(e))).run())

    def current_release(self) -> dict | None:
        return next((r for r in self.releases if r.get("current")), None)

    def previous_version(self) -> str | None:
        """The release deployed before the current one (what Roll back goes to)."""
        versions = [r["version"] for r in self.releases]
        current = self.status.get("version")
        if current not in versions or versions.index(current) == 0:
            return None
        return versions[versions.index(current) - 1]

    # -- actions ------------------------------------------------------------------------------
    def ask_rollback(self) -> None:
        target, current = self.previous_version(), self.status.get("version")
        if target:
            self._confirm("Roll back", f"Roll back {self.model} on {self.server} from {current} to {target}?",
                          "Roll back", lambda reason: self.run_change("rollback", to=target, reason=reason))

    def ask_make_current(self, version: str) -> None:
        current = self.status.get("version")
        if version and version != current:
            self._confirm("Make current", f"Make {self.model} {version} current on {self.server}?\n"
                          f"{current} → {version}", "Make current",
                          lambda reason: self.run_change("rollback", to=version, reason=reason))

    def run_change(self, action: str, **params) -> None:
        if self.busy or not self.server:
            return
        server, model = self.server, self.model
        self._set_busy(True)
        self.banner.clear()
        self.header.message.setText(f"{ACTIONS[action]}: {model} on {server}…")

        def work(ctx):
            # the workspace asks for a production reason where one is needed (rollback, not start / stop)
            return ctx.drive(ctx.workspace.change(ctx.transport, action, model, **params))

        (ServerOp(self, server, f"{action} {model}", work).progress(self.header.show_progress)
         .success(lambda r, k=(server, model): self._changed(k, action, r, None))
         .failure(lambda e, k=(server, model): self._changed(k, action, None, e)).run())

    def _confirm(self, title: str, text: str, ok_text: str, on_yes) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("The release is started and health-checked before the switch; if it does not "
                               "answer, the current release keeps serving.")
        ok = box.addButton(ok_text, QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.confirm_button = ok
        add_reason(box)
        box.finished.connect(lambda _r, b=box: on_yes(b.reason.text().strip())
                             if b.clickedButton() is b.confirm_button else None)
        box.finished.connect(lambda _r: setattr(self, "confirmation", None))
        self.confirmation = box
        box.open()

    def _changed(self, key, action: str, result, error) -> None:
        self._set_busy(False)
        server, model = key
        if key == (self.server, self.model):
            if error is None:
                version = (result or {}).get("version", "")
                done = {"rollback": f"{model} {version} is current", "start": f"{model} {version} started",
                        "stop": f"{model} {version} stopped"}[action]
                detail = (result or {}).get("detail") or ""
                self.header.message.setText(f"{done} ({detail})." if detail and detail not in done else f"{done}.")
            else:
                self.header.message.clear()
                self.banner.show_error(error, f"{ACTIONS[action]} of {model} on {server} failed: ")
            self.reload()
        self.changed.emit(server)

    # -- results ------------------------------------------------------------------------------
    def _loaded(self, result) -> None:
        rows, releases = result
        self.stale_banner.clear()
        self.releases = releases
        self.releases_view.set_releases(releases)
        self.jobs.set_versions([r["version"] for r in releases])
        self.experiment.set_releases(releases)
        self.overview.set_release(self.current_release())
        if rows:
            self._set_status(rows[0])
        else:
            self._set_status(dict(self.status, state="not deployed", port=None, version=None))

    def _load_failed(self, error) -> None:
        if is_connection_error(error):
            self._show_stale(error)
        else:
            self.banner.show_error(error, f"Cannot read the releases of {self.model}: ")

    def _on_server_state(self, server: str, state: str, detail: str) -> None:
        if server != self.server:
            return
        if state == UNREACHABLE:
            self._show_stale(ConnectionError(detail or f"{server} does not answer"))
        elif state == CONNECTED and self.stale_banner.error is not None:
            self.stale_banner.clear()
            self.reload()

    def _show_stale(self, error) -> None:
        self.stale_banner.show_error(error, f"{self.server} cannot be reached; showing the last known data "
                                            f"(may be stale): ")

    # -- header ------------------------------------------------------------------------------
    def _set_status(self, status: dict) -> None:
        self.status = dict(status)
        self.header.set_status(self.server, status, self.previous_version(), self.busy)
        self.roles.apply()
        self.predict.set_model(self.server, self.model, status.get("version"))

    def _role_released(self) -> None:
        """The role allows more now: each view enables what its own state allows."""
        if self.status:
            self._set_status(self.status)
        self.jobs.update_buttons()
        self.releases_view.set_busy(self.busy)
        self.experiment.set_busy(self.experiment.busy)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.releases_view.set_busy(busy)
        self.header.set_status(self.server, self.status, self.previous_version(), busy)
        self.roles.apply()
