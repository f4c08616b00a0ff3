"""Deploy a bundle to one server: check it, confirm what changes, watch each step.

Every disk and server call runs in the TaskRunner (the bundle check in the background pool, the plan
and the deploy on the server's own thread); this dialog only reacts to their signals.
"""
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QMessageBox, QPushButton, QStackedWidget, QVBoxLayout

from app import errors
from app.bundle import check_path
from app.errors import error_code
from app.deploy.plan import plan_deploy
from app.deploy.profile_report import capacity

from app.ui.deploy.check_page import CheckPage
from app.ui.deploy.confirm_page import ConfirmPage
from app.ui.deploy.progress_page import STEPS, ProgressPage
from app.ui.errors import details, summary
from app.ui.icons import icon
from app.ui.operations import BackgroundOp, ServerOp

CANCELLABLE = {None, "check", "connect", "upload"}  # after these, the server's agent owns the change
NO_CANCEL_TIP = ("The server is now building and switching the release; it finishes the change or "
                 "undoes it by itself, so it can no longer be cancelled from here.")


class DeployDialog(QDialog):
    """Signals:
        changed(str server): the deploy finished (ok, failed or cancelled after starting)
        progressed(object): each Progress value of the running deploy, after the dialog showed it
    """

    changed = Signal(str)
    progressed = Signal(object)

    def __init__(self, runner, server: str, path: Path, parent=None):
        super().__init__(parent)
        self.runner, self.server, self.path = runner, server, Path(path)
        self.tasks: dict[str, object] = {}  # keep a reference to every task started
        self.check = self.plan = self.error = None
        self.step: str | None = None
        self.deploying = self.finished_deploy = False
        self.setWindowTitle(f"Deploy {self.path.name} to {server}")
        self.setWindowIcon(icon("deploy"))
        self.resize(780, 640)
        self.stack = QStackedWidget()
        self.check_page = CheckPage(self.path)
        self.confirm_page = ConfirmPage(server)
        self.progress_page = ProgressPage()
        for page, name in ((self.check_page, "checkPage"), (self.confirm_page, "confirmPage"),
                           (self.progress_page, "progressPage")):
            page.setObjectName(name)
            self.stack.addWidget(page)
        self.progress_page.details_requested.connect(self._show_details)
        self.back_button = self._button("Back", "backButton", self._back)
        self.next_button = self._button("Next", "nextButton", self._to_confirm)
        self.deploy_button = self._button("Deploy", "deployButton", self._start_deploy, "deploy")
        self.cancel_button = self._button("Cancel", "cancelButton", self._cancel_clicked, "cancel")
        self.close_button = self._button("Close", "closeButton", self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.back_button, self.next_button, self.deploy_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack, 1)
        layout.addLayout(buttons)
        self._show_page(self.check_page)
        self._start_check()

    def _button(self, text, name, slot, icon_name="") -> QPushButton:
        b = QPushButton(icon(icon_name) if icon_name else icon(""), text)
        b.setObjectName(name)
        b.clicked.connect(slot)
        return b

    # -- pages ----------------------------------------------------------------------------------
    def _show_page(self, page) -> None:
        self.stack.setCurrentWidget(page)
        on_check, on_confirm, on_progress = (page is self.check_page, page is self.confirm_page,
                                             page is self.progress_page)
        self.back_button.setVisible(on_confirm)
        self.next_button.setVisible(on_check)
        self.next_button.setEnabled(on_check and self.check_page.ok)
        self.deploy_button.setVisible(on_confirm)
        self.close_button.setVisible(on_progress and self.finished_deploy)
        self.cancel_button.setVisible(not (on_progress and self.finished_deploy))
        self.cancel_button.setText("Cancel deploy" if on_progress else "Cancel")
        self._update_defaults()

    def _update_defaults(self) -> None:
        page = self.stack.currentWidget()
        for b in (self.back_button, self.next_button, self.deploy_button, self.cancel_button, self.close_button):
            b.setDefault(False)
            b.setAutoDefault(False)
        if page is self.check_page and self.next_button.isEnabled():
            self.next_button.setDefault(True)
        elif page is self.confirm_page:
            ready = self.plan is not None
            self.deploy_button.setEnabled(ready)
            if ready and not self.confirm_page.production:
                self.deploy_button.setDefault(True)
                self.deploy_button.setFocus()
            else:  # production: Enter must not deploy; the operator clicks Deploy
                self.cancel_button.setFocus()
            self.deploy_button.setToolTip("Production server: click to deploy (Enter does not)"
                                          if self.confirm_page.production else "")
        elif page is self.progress_page and self.finished_deploy:
            self.close_button.setDefault(True)
            self.close_button.setFocus()

    def _back(self) -> None:
        self._show_page(self.check_page)

    # -- 1. check -------------------------------------------------------------------------------
    def _start_check(self) -> None:
        path = self.path
        self.tasks["check"] = (BackgroundOp(self, f"check {path.name}", lambda ctx: check_path(path))
                               .success(self._checked).failure(self.check_page.show_failure).run())

    def _checked(self, result) -> None:
        self.check = result
        self.check_page.show_result(result)
        if result.manifest is not None:
            self.setWindowTitle(f"Deploy {result.manifest.name} {result.manifest.version} to {self.server}")
        if self.check_page.ok and not result.problems:
            self._to_confirm()  # nothing to read on the check page: go straight on
        else:
            self._show_page(self.check_page)

    # -- 2. confirm -----------------------------------------------------------------------------
    def _to_confirm(self) -> None:
        if not self.check_page.ok:
            return
        manifest, server = self.check.manifest, self.server

        path = self.path

        def work(ctx):
            return (plan_deploy(ctx.transport, manifest), ctx.workspace.servers.get(server).environment,
                    capacity(ctx.transport, path))

        self.plan = None
        self.confirm_page.show_waiting()
        self._show_page(self.confirm_page)
        self.tasks["plan"] = (ServerOp(self, server, f"plan deploy of {manifest.name}", work)
                              .success(self._planned).failure(self._plan_failed).run())

    def _planned(self, answer) -> None:
        plan, environment, fits = answer
        self.plan = plan
        self.confirm_page.show_plan(plan, environment, fits)
        self._update_defaults()

    def _plan_failed(self, error) -> None:
        self.confirm_page.show_failure(error)
        self._update_defaults()

    # -- 3. deploy ------------------------------------------------------------------------------
    def _start_deploy(self) -> None:
        if self.plan is None or self.deploying:
            return
        path, reason = self.path, self.confirm_page.reason.text().strip()

        def work(ctx):
            deploy = ctx.workspace.deploy(ctx.transport, path, reason=reason, cancel=ctx.task.cancel_event)
            ctx.drive(deploy.run())
            return deploy.result or {}

        self.deploying = True
        self._show_page(self.progress_page)
        self.tasks["deploy"] = (ServerOp(self, self.server, f"deploy {path.name}", work).progress(self._progressed)
                                .success(self._deployed).failure(self._deploy_failed).run())

    def _progressed(self, p) -> None:
        self.progress_page.show_progress(p)
        if p.line is None and p.step != "done":
            self.step = p.step
        if self.step not in CANCELLABLE and self.cancel_button.isEnabled():
            self.cancel_button.setEnabled(False)
            self.cancel_button.setToolTip(NO_CANCEL_TIP)
        self.progressed.emit(p)

    def _deployed(self, result) -> None:
        self._end()
        p = self.plan
        if result.get("already"):
            text = f"{p.model} {p.new_version} was already current and running on {self.server}; nothing changed"
        else:
            text = f"{p.model} {p.new_version} is current on {self.server}"
        self.progress_page.show_success(text)
        self.changed.emit(self.server)

    def _deploy_failed(self, error) -> None:
        self._end()
        self.error = error
        p = self.plan
        cancelled = error_code(error) == errors.CANCELLED
        before_switch = self.step in STEPS and STEPS.index(self.step) < STEPS.index("switch")
        still = f" {p.model} {p.old_version} is still current." if p.old_version else ""
        if cancelled:
            text = f"Deploy cancelled: nothing on {self.server} changed.{still}"
        else:
            text = _sentence(f"The deploy of {p.model} {p.new_version} to {self.server} failed: {summary(error)}")
            if before_switch:
                text += still or f" Nothing on {self.server} changed."
        self.progress_page.show_failure(text, cancelled, bool(details(error)) and not cancelled)
        self.changed.emit(self.server)

    def _end(self) -> None:
        self.deploying, self.finished_deploy = False, True
        self._show_page(self.progress_page)

    def _show_details(self) -> None:
        if self.error is None:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Deploy failed — details", summary(self.error),
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("detailsBox")
        box.setDetailedText(details(self.error))
        box.open()

    # -- cancel and close -------------------------------------------------------------------------
    def _cancel_clicked(self) -> None:
        if self.deploying:
            if self.step in CANCELLABLE:
                self.tasks["deploy"].cancel()
                self.cancel_button.setEnabled(False)
                self.cancel_button.setText("Cancelling…")
        else:
            self.reject()

    def reject(self) -> None:
        if not self.deploying:
            super().reject()
            return
        cancellable = self.step in CANCELLABLE
        if cancellable:
            text = "A deploy is running. Cancel it? Nothing on the server has changed yet."
            yes, no = "Cancel the deploy", "Keep deploying"
        else:
            text = ("The server is finishing this deploy (or undoing it) by itself and it cannot be stopped now. "
                    "Close this window anyway? The outcome will appear in the audit log.")
            yes, no = "Close the window", "Keep watching"
        box = QMessageBox(QMessageBox.Icon.Question, "Deploy running", text, QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("closeWhileRunning")
        confirm = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton(no, QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.finished.connect(lambda _r: self._close_answered(box.clickedButton() is confirm, cancellable))
        box.open()

    def _close_answered(self, confirmed: bool, cancellable: bool) -> None:
        if not confirmed:
            return
        if cancellable and self.deploying:
            self.tasks["deploy"].cancel()
        super().reject()  # hidden, not destroyed: `changed` still fires when the task ends

    def closeEvent(self, event) -> None:
        if self.deploying:
            event.ignore()
            self.reject()
        else:
            super().closeEvent(event)


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."
