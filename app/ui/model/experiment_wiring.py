"""The Experiment tab's calls: its status read every few seconds while the tab is on screen (the
router keeps the figures on the server; closing the tab or Berth stops nothing), start and stop after
a confirmation, each on the server's thread (app/deploy/experiments.py, as `berth experiment`)."""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMessageBox

from app.deploy import experiments
from app.ui.model.experiment_view import ExperimentView
from app.ui.operations import ServerOp

POLL_MS = 5000
MODE_TEXT = {"ab": "an A/B experiment", "canary": "a canary", "shadow": "a shadow experiment"}


class ExperimentTab(QObject):
    def __init__(self, page, view: ExperimentView):
        super().__init__(page)
        self.page, self.view = page, view
        self.server: str | None = None
        self.model: str | None = None
        self.confirmation: QMessageBox | None = None
        self._reading = None
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        view.start_requested.connect(self.ask_start)
        view.stop_requested.connect(self.ask_stop)

    def show_model(self, server: str, model: str) -> None:
        if (server, model) != (self.server, self.model):
            self.server, self.model = server, model
            self.view.show_status(None)
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        if not self.server or not (force or self.view.isVisible()):
            return
        if self._reading is not None and not self._reading.done:
            return
        server, model = self.server, self.model
        self._reading = (ServerOp(self.page, server, f"experiment status {model}",
                                  lambda ctx: experiments.status(ctx.transport, model))
                         .only_if(lambda k=(server, model): k == (self.server, self.model))
                         .success(self.view.show_status).failure(self._read_failed).run())

    def _read_failed(self, error) -> None:
        if getattr(error, "code", None) == "no_experiment":
            self.view.show_status(None)
        else:
            self.view.form_error.setText(f"Cannot read the experiment: {error}")

    def ask_start(self, req: dict) -> None:
        b, mode = req["b"], req["mode"]
        share = {"ab": f"B gets {req.get('weight', 0) * 100:g} % of requests",
                 "canary": f"B gets {req.get('canary', [0])[0]} % first, then more while it stays within its limits",
                 "shadow": "A answers every request; B gets a copy and its answers are only recorded"}[mode]
        self._confirm("Start experiment", f"Start {MODE_TEXT[mode]} of {self.model} {b} on {self.server}?\n{share}.",
                      "Start", lambda: self._run("start", lambda ctx, m: experiments.start(
                          ctx.transport, ctx.workspace.audit, m, req)))

    def ask_stop(self, promote: bool) -> None:
        status = self.view.status or {}
        a, b = (status.get("a") or {}).get("version"), (status.get("b") or {}).get("version")
        text = (f"Promote {b}: it becomes the current release of {self.model} on {self.server}, and the experiment ends."
                if promote else f"Stop the experiment: {a} keeps serving {self.model} on {self.server}.")
        self._confirm("Promote B" if promote else "Stop experiment", text, "Promote" if promote else "Stop",
                      lambda: self._run("stop", lambda ctx, m: experiments.stop(
                          ctx.transport, ctx.workspace.audit, m, promote)))

    def _run(self, action: str, call) -> None:
        server, model = self.server, self.model
        self.view.set_busy(True)
        self.view.form_error.setText("")

        def done(_result):
            self.view.set_busy(False)
            self.refresh(force=True)
            self.page.reload()  # a promote changed the current release

        def failed(error):
            self.view.set_busy(False)
            self.view.form_error.setText(str(error))
            self.refresh(force=True)

        (ServerOp(self.page, server, f"experiment {action} {model}", lambda ctx: call(ctx, model))
         .success(done).failure(failed).run())

    def _confirm(self, title: str, text: str, ok_text: str, on_yes) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, self.page)
        ok = box.addButton(ok_text, QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.confirm_button = ok
        box.finished.connect(lambda _r, bx=box: on_yes() if bx.clickedButton() is bx.confirm_button else None)
        box.finished.connect(lambda _r: setattr(self, "confirmation", None))
        self.confirmation = box
        box.open()
