"""One way for a view to run an operation: the work, what happens when it succeeds or fails, and a
banner for failures, as one expression (after Anki's `CollectionOp(parent, op).success(...)`):

    ServerOp(self, server, f"rollback {model}", work).success(self._done).with_banner(self.banner).run()

The work runs in the server's lane (ServerOp: after its earlier tasks, on the runner's bounded
server pool) or on the shared pool (BackgroundOp) of the view's TaskRunner, with the view as the
task's owner: once the view is deleted nothing calls back, and `run()` returns the Task so the view
can cancel it or ask whether it is `done`. Handlers run on the GUI thread, in the order: `ended`,
then (while `only_if` holds) `success` or `failure` and the banner."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from app.ui.tasks import Context, Task, TaskRunner


class Operation:
    """What ServerOp and BackgroundOp share: handlers set by chaining (each returns the operation),
    then `run()`. `view` owns the task and gives the runner (`view.runner`) unless one is passed."""

    def __init__(self, view: QObject, server: str | None, label: str, work: Callable[[Context], object],
                 runner: TaskRunner | None = None):
        self.view, self.server, self.label, self.work = view, server, label, work
        self.runner = runner if runner is not None else view.runner
        self._success: Callable | None = None
        self._failure: Callable | None = None
        self._progress: Callable | None = None
        self._ended: Callable | None = None
        self._banner = None
        self._prefix = ""
        self._only_if: Callable[[], bool] | None = None

    def success(self, fn: Callable[[object], None]) -> Operation:
        """fn(result) when the work returned."""
        self._success = fn
        return self

    def failure(self, fn: Callable[[BaseException], None]) -> Operation:
        """fn(error) when the work raised (before the banner shows it, when there is one)."""
        self._failure = fn
        return self

    def progress(self, fn: Callable[[object], None]) -> Operation:
        """fn(value) for each value the work reports (`ctx.task.progress`, `ctx.drive`)."""
        self._progress = fn
        return self

    def ended(self, fn: Callable[[], None]) -> Operation:
        """fn() first, whatever the outcome and whatever `only_if` says (re-enable a button)."""
        self._ended = fn
        return self

    def with_banner(self, banner, prefix: str = "") -> Operation:
        """Failures are shown in this ErrorBanner, as `prefix` + the error's line, with its details."""
        self._banner, self._prefix = banner, prefix
        return self

    def only_if(self, predicate: Callable[[], bool]) -> Operation:
        """success / failure / banner only while predicate() holds when the answer arrives: the view
        still shows what it asked about (not another server or model chosen meanwhile)."""
        self._only_if = predicate
        return self

    def run(self) -> Task:
        """Queue the work; the returned Task can be cancelled or asked whether it is `done`."""
        if self.server is None:
            task = self.runner.in_background(self.label, self.work, owner=self.view)
        else:
            task = self.runner.on_server(self.server, self.label, self.work, owner=self.view)
        task.operation = self  # lives as long as its task (PySide holds a plain object's method weakly)
        if self._progress is not None:
            task.progressed.connect(self._progress)
        task.finished.connect(lambda result: self._finished(result))
        task.failed.connect(lambda error: self._failed(error))
        return task

    def _current(self) -> bool:
        return self._only_if is None or self._only_if()

    def _finished(self, result) -> None:
        if self._ended is not None:
            self._ended()
        if self._success is not None and self._current():
            self._success(result)

    def _failed(self, error: BaseException) -> None:
        if self._ended is not None:
            self._ended()
        if not self._current():
            return
        if self._failure is not None:
            self._failure(error)
        if self._banner is not None:
            self._banner.show_error(error, self._prefix)


class ServerOp(Operation):
    """Work in `server`'s lane (in order with its other tasks): `ctx.transport` is its (reused) connection."""

    def __init__(self, view: QObject, server: str, label: str, work: Callable[[Context], object],
                 runner: TaskRunner | None = None):
        super().__init__(view, server, label, work, runner)


class BackgroundOp(Operation):
    """Work that needs no server (disk, database), on the runner's shared pool."""

    def __init__(self, view: QObject, label: str, work: Callable[[Context], object],
                 runner: TaskRunner | None = None):
        super().__init__(view, None, label, work, runner)
