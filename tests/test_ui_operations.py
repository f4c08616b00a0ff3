"""One way to run an operation from a view (app/ui/operations.py): handlers on the GUI thread, in
order, a failure shown in the banner, nothing for a view that moved on or was closed."""
import threading

import pytest
from PySide6.QtWidgets import QWidget

from app.errors import BerthError
from app.ui.errors import ErrorBanner
from app.ui.operations import BackgroundOp, ServerOp


@pytest.fixture
def view(qtbot, task_runner):
    widget = QWidget()
    widget.runner = task_runner
    widget.banner = ErrorBanner(widget)
    qtbot.addWidget(widget)
    return widget


def test_success_after_ended_and_progress_on_the_gui_thread(qtbot, view):
    gui, seen = threading.get_ident(), []

    def work(ctx):
        ctx.task.progress("half")
        return ctx.transport.hello()["root"]

    task = (ServerOp(view, "local", "hello local", work)
            .progress(lambda v: seen.append(("progress", v, threading.get_ident())))
            .ended(lambda: seen.append(("ended", None, threading.get_ident())))
            .success(lambda root: seen.append(("success", root, threading.get_ident())))
            .failure(lambda e: seen.append(("failure", e, threading.get_ident())))
            .with_banner(view.banner).run())
    qtbot.waitUntil(lambda: task.done, timeout=20000)
    assert [s[0] for s in seen] == ["progress", "ended", "success"] and {s[2] for s in seen} == {gui}
    assert seen[0][1] == "half" and seen[2][1].endswith("local") and not view.banner.isVisibleTo(view)


def test_a_failure_reaches_its_handler_then_the_banner(qtbot, view):
    error, order = BerthError("the disk is full", log=["pip: no space left"]), []

    def work(ctx):
        raise error

    BackgroundOp(view, "fails", work).failure(lambda e: order.append(("failure", e))) \
        .with_banner(view.banner, "Deploy failed: ").run()
    qtbot.waitUntil(lambda: view.banner.error is not None, timeout=10000)
    assert order == [("failure", error)] and view.banner.error is error
    assert view.banner.label.text() == "Deploy failed: the disk is full"
    assert view.banner.action_button.isVisibleTo(view.banner)  # Details…: the server's log is there


def test_a_view_that_moved_on_gets_only_ended(qtbot, view):
    showing, seen = {"model": "iris"}, []
    for outcome in ("ok", "raise"):
        def work(ctx, outcome=outcome):
            if outcome == "raise":
                raise ValueError("late")
            return outcome

        task = (BackgroundOp(view, f"read iris ({outcome})", work)
                .ended(lambda o=outcome: seen.append(("ended", o)))
                .only_if(lambda: showing["model"] == "iris")
                .success(lambda r: seen.append(("success", r))).failure(lambda e: seen.append(("failure", e)))
                .with_banner(view.banner).run())
        showing["model"] = "wine"  # the operator chose another model meanwhile
        qtbot.waitUntil(lambda t=task: t.done, timeout=10000)
        showing["model"] = "iris"
    assert seen == [("ended", "ok"), ("ended", "raise")] and view.banner.error is None


def test_a_closed_view_is_not_called_back(qtbot, task_runner):
    from shiboken6 import delete

    owner, go, seen = QWidget(), threading.Event(), []
    owner.runner = task_runner
    task = (BackgroundOp(owner, "slow", lambda ctx: go.wait(10)).ended(lambda: seen.append("ended"))
            .success(seen.append).run())
    delete(owner)
    go.set()
    qtbot.waitUntil(lambda: not task_runner.active, timeout=10000)
    assert seen == [] and not task.done


def test_run_returns_the_task_to_cancel(qtbot, view):
    started, results = threading.Event(), []

    def work(ctx):
        started.set()
        return ctx.task.cancel_event.wait(10)

    task = BackgroundOp(view, "cancellable", work).success(results.append).run()
    assert started.wait(10)
    task.cancel()
    qtbot.waitUntil(lambda: results == [True], timeout=10000)
    assert task.cancelled and task.done
