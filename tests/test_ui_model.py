"""The model page, driven like an operator would, against the real built-in `local` server with real
runners: iris 1.0.0 then 1.1.0 are deployed first, and every action happens for real."""
import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.deploy.queries import releases, status
from app.remote.local import LocalTransport
from app.ui.model.log_view import new_lines
from app.ui.model.overview import uptime
from app.ui.model.page import ModelPage
from app.ui.model.releases_view import ROLE_VERSION, ReleasesModel
from app.workspace import Workspace
from cli_kit import iris_copy

WAIT = 60000


def local(berth_home) -> LocalTransport:
    return LocalTransport(str(berth_home / "local"))


def server_status(berth_home, model="iris") -> dict:
    with local(berth_home) as t:
        return status(t, model)[0]


@pytest.fixture
def iris_two(berth_home, tmp_path, stop_local_runners):
    """iris 1.0.0 then 1.1.0 deployed on `local` (1.1.0 current and running)."""
    audit = Workspace().audit
    with local(berth_home) as t:
        for version in ("1.0.0", "1.1.0"):
            run_to_end(Deploy(t, iris_copy(tmp_path, version), audit).run())
    return berth_home


@pytest.fixture
def page(qtbot, task_runner, iris_two):
    page = ModelPage(task_runner)
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()
    page.show_model("local", server_status(iris_two))
    qtbot.waitUntil(lambda: len(page.releases) == 2, timeout=WAIT)
    return page


def confirm(qtbot, page, *must_name, reason="") -> None:
    """The confirmation is open and names every one of `must_name`; type the reason, click its action button."""
    qtbot.waitUntil(lambda: page.confirmation is not None and page.confirmation.isVisible(), timeout=5000)
    box = page.confirmation
    text = box.text()
    for word in must_name:
        assert word in text, text
    assert box.reason.isVisible()
    qtbot.keyClicks(box.reason, reason)
    qtbot.mouseClick(box.confirm_button, Qt.MouseButton.LeftButton)


def test_header_overview_and_releases(page, qtmodeltester):
    assert page.header.title.text() == "iris"
    assert page.header.version_label.text() == "1.1.0"
    assert page.header.state_label.text() == "running"
    port = page.status["port"]
    assert page.header.endpoint_label.text() == f"Endpoint: 127.0.0.1:{port} on local"
    assert page.header.uptime_label.text().startswith("Up ")
    assert page.header.rollback_button.isEnabled() and page.header.stop_button.isEnabled() and not page.header.start_button.isEnabled()

    assert page.overview.text("dataset") == "data/iris.csv"
    assert page.overview.text("dataset_sha256").startswith("9cc1c345")
    assert page.overview.text("code_commit") == "unversioned"
    assert "Iris flower" in page.overview.text("description")
    assert page.overview.metrics.values["accuracy"] == "0.9333"
    assert page.overview.params.values["epochs"] == "3000"

    model = page.releases_view.model
    qtmodeltester.check(model)
    assert [model.index(r, 0).data(ROLE_VERSION) for r in range(model.rowCount())] == ["1.1.0", "1.0.0"]
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers[:5] == ["Version", "Current", "Deployed at", "Deployed by", "Bundle sha256"]
    assert {"accuracy", "log_loss", "n_test"} <= set(headers[5:])
    assert model.index(0, 1).data() == "current" and model.index(1, 1).data() == ""
    assert len(model.index(0, 4).data()) == 12
    assert model.index(1, headers.index("accuracy")).data() == "0.9333"
    assert model.index(0, 3).data()  # who deployed it


def test_releases_model_metric_union(qtmodeltester):
    model = ReleasesModel()
    rows = [{"version": "1", "current": False, "manifest": {"training": {"metrics": {"acc": 0.5}}}},
            {"version": "2", "current": True, "manifest": {"training": {"metrics": {"acc": 0.7, "f1": 0.61234}}}},
            {"version": "3", "current": False, "manifest": {}}]
    model.set_releases(rows)
    qtmodeltester.check(model)
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in (5, 6)] == ["acc", "f1"]
    assert [model.index(r, 0).data() for r in range(3)] == ["3", "2", "1"]
    assert model.index(1, 6).data() == "0.6123" and model.index(2, 6).data() == "" and model.index(0, 5).data() == ""
    assert model.current_version() == "2"
    model.set_releases([])
    qtmodeltester.check(model)


def test_roll_back_then_make_current(qtbot, page, iris_two):
    qtbot.mouseClick(page.header.rollback_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(page.changed, timeout=WAIT) as changed:
        confirm(qtbot, page, "1.1.0", "1.0.0", reason="latency regression in 1.1.0")
    assert changed.args == ["local"]
    assert server_status(iris_two)["version"] == "1.0.0"
    done = Workspace().audit.list(limit=1)[0]
    assert (done["action"], done["outcome"], done["old"], done["new"]) == ("rollback", "ok", "1.1.0", "1.0.0")
    assert done["reason"] == "latency regression in 1.1.0"
    qtbot.waitUntil(lambda: page.header.version_label.text() == "1.0.0" and page.releases_view.model.current_version()
                    == "1.0.0", timeout=WAIT)
    assert not page.header.rollback_button.isEnabled()  # nothing deployed before 1.0.0
    assert not page.banner.isVisible()

    view = page.releases_view
    page.tabs.setCurrentWidget(view)
    view.select_version("1.0.0")
    assert not view.make_current_button.isEnabled()  # already current
    view.select_version("1.1.0")
    assert view.make_current_button.isEnabled()
    qtbot.mouseClick(view.make_current_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        confirm(qtbot, page, "1.0.0 → 1.1.0")
    with local(iris_two) as t:
        assert next(r["version"] for r in releases(t, "iris") if r["current"]) == "1.1.0"
    qtbot.waitUntil(lambda: view.model.current_version() == "1.1.0" and page.header.version_label.text() == "1.1.0",
                    timeout=WAIT)


def test_cancelled_confirmation_changes_nothing(qtbot, page, iris_two):
    qtbot.mouseClick(page.header.rollback_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.confirmation is not None, timeout=5000)
    page.confirmation.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.wait(200)
    assert not page.busy and server_status(iris_two)["version"] == "1.1.0"


def test_stop_then_start(qtbot, page, iris_two):
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        qtbot.mouseClick(page.header.stop_button, Qt.MouseButton.LeftButton)
    assert server_status(iris_two)["state"] == "stopped"
    qtbot.waitUntil(lambda: page.header.state_label.text() == "stopped", timeout=WAIT)
    assert page.header.start_button.isEnabled() and not page.header.stop_button.isEnabled()
    assert "not serving" in page.header.endpoint_label.text() and page.header.uptime_label.text() == ""

    with qtbot.waitSignal(page.changed, timeout=WAIT):
        qtbot.mouseClick(page.header.start_button, Qt.MouseButton.LeftButton)
    assert server_status(iris_two)["state"] == "running"
    qtbot.waitUntil(lambda: page.header.state_label.text() == "running", timeout=WAIT)
    assert page.header.endpoint_label.text().startswith("Endpoint: 127.0.0.1:")


def test_predict_with_the_example_and_invalid_json(qtbot, page):
    panel = page.predict
    page.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: "instances" in panel.input.toPlainText(), timeout=WAIT)
    assert json.loads(panel.input.toPlainText())["instances"][0] == [5.1, 3.5, 1.4, 0.2]
    with qtbot.waitSignal(panel.answered, timeout=WAIT) as answered:
        qtbot.mouseClick(panel.send_button, Qt.MouseButton.LeftButton)
    output = json.loads(panel.output.toPlainText())
    assert output == answered.args[0]
    assert "setosa" in panel.output.toPlainText() and "virginica" in panel.output.toPlainText()
    assert panel.latency.text().startswith("Answered in ") and " ms" in panel.latency.text()

    sent = []
    panel.runner.on_server = lambda *a: sent.append(a)  # nothing may be sent from here on
    panel.input.setPlainText('{"instances": [[5.1, 3.5, 1.4, 0.2],]}')
    assert "Not valid JSON" in panel.validity.text()
    panel.output.setPlainText("previous")
    qtbot.mouseClick(panel.send_button, Qt.MouseButton.LeftButton)
    assert sent == [] and "line 1" in panel.validity.text() and panel.output.toPlainText() == "previous"


def test_logs_show_the_runner_log(qtbot, page):
    page.tabs.setCurrentWidget(page.logs)
    assert page.logs.timer.isActive()
    qtbot.waitUntil(lambda: page.logs.text.toPlainText().strip() != "", timeout=WAIT)
    assert "1.1.0" in page.logs.source.text()
    page.tabs.setCurrentIndex(0)
    assert not page.logs.timer.isActive()  # polled only while visible


def test_stale_banner_keeps_the_data(qtbot, page):
    page._on_server_state("local", "unreachable", "connection refused")
    assert page.stale_banner.isVisible() and "stale" in page.stale_banner.label.text()
    assert page.header.version_label.text() == "1.1.0" and page.releases_view.model.rowCount() == 2
    page._on_server_state("local", "connected", "")
    assert not page.stale_banner.isVisible()


def test_helpers():
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert new_lines([], ["a"]) == ["a"] and new_lines(["a"], ["a"]) == [] and new_lines(["x"], ["y"]) == ["y"]
    from datetime import datetime, timezone
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert uptime("2024-01-01T11:58:55Z", now) == "1 min 05 s"
    assert uptime("2024-01-01T09:30:00Z", now) == "2 h 30 min" and uptime(None) == ""


def test_selecting_a_release_shows_what_changed_against_the_current_one(qtbot, page):
    view = page.releases_view
    assert "select a release" in view.diff.title.text()
    view.select_version("1.0.0")  # not current: compared from the current 1.1.0 to it
    qtbot.waitUntil(lambda: "asking" not in view.diff.title.text() and "1.0.0" in view.diff.title.text(), timeout=WAIT)
    assert view.diff.title.text() == "<b>What changed</b> from 1.1.0 to 1.0.0"
    text = view.diff.text.toPlainText()
    assert "Parameters: the same" in text and "0 added, 0 removed, 1 changed" in text and "~ berth.toml" in text
    assert "accuracy" in text
    view.select_version("1.1.0")  # the current one: compared with the release before it
    qtbot.waitUntil(lambda: view.diff.title.text() == "<b>What changed</b> from 1.0.0 to 1.1.0", timeout=WAIT)


def test_an_experiment_from_the_tab_runs_on_the_server_and_ends_from_it(qtbot, page, iris_two):
    """Start an A/B experiment of 1.0.0 against the current 1.1.0 from the Experiment tab, see it
    running with both versions, then stop it: A keeps serving and the server has no router left."""
    tab, view = page.experiment_tab, page.experiment
    page.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.b_version.count() == 1, timeout=WAIT)
    assert view.stack.currentIndex() == 0  # no experiment yet: the form
    view.mode_buttons["ab"].setChecked(True)
    view.weight.setValue(0.5)
    view.start_button.click()
    qtbot.waitUntil(lambda: tab.confirmation is not None, timeout=5000)
    assert "Start an A/B experiment of iris 1.0.0 on local?" in tab.confirmation.text()
    tab.confirmation.confirm_button.click()
    qtbot.waitUntil(lambda: view.stack.currentIndex() == 1, timeout=WAIT)
    assert "A = 1.1.0, B = 1.0.0, B at 50 %" in view.headline.text()
    assert server_status(iris_two)["experiment"] == "ab 50%"
    view.stop_button.click()
    qtbot.waitUntil(lambda: tab.confirmation is not None, timeout=5000)
    assert "1.1.0 keeps serving iris on local" in tab.confirmation.text()
    tab.confirmation.confirm_button.click()
    qtbot.waitUntil(lambda: view.stack.currentIndex() == 0 and "stopped" in view.last.text(), timeout=WAIT)
    assert not server_status(iris_two).get("experiment")
