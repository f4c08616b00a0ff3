"""The Jobs tab of the model page, driven like an operator would, against the real built-in `local`
server: iris deployed, a real job over an inbox of JSON lines into a real SQLite output, real runs
in the release's venv, and every change audited through the same Workspace.job_change as the CLI."""
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.audit.query import query_events
from app.deploy import jobs as job_service
from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.deploy.queries import status
from app.remote.local import LocalTransport
from app.ui.model.jobs_tables import duration, job_state, schedule_fields
from app.ui.model.page import ModelPage
from app.workspace import Workspace
from cli_kit import iris_copy
from jobs_kit import cleanup

WAIT = 60000
GOOD = '{"features": [5.1, 3.5, 1.4, 0.2]}\n{"features": [6.3, 3.3, 6.0, 2.5]}\n'
BAD = '{"features": [1, 2]}\n'  # three measurements short: the bundle's input check rejects it


@pytest.fixture
def served(berth_home, tmp_path):
    """iris 1.0.0 on `local`, and a job `nightly` over tmp_path/inbox into tmp_path/out.db."""
    ws = Workspace()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with LocalTransport(str(berth_home / "local")) as t:
        run_to_end(Deploy(t, iris_copy(tmp_path, "1.0.0"), ws.audit).run())
        ws.job_change(t, "add", "nightly", "iris", {
            "model": "iris", "schedule": {"every": "1d"}, "tz": "UTC",
            "input": {"kind": "dir", "path": str(inbox), "pattern": "*.jsonl"},
            "output": {"url": f"sqlite:///{tmp_path}/out.db", "table": "flowers"}, "version": None})
        row = status(t, "iris")[0]
    yield row
    cleanup(berth_home / "local")


@pytest.fixture
def tab(qtbot, task_runner, served):
    page = ModelPage(task_runner)
    qtbot.addWidget(page)
    page.resize(1200, 800)
    page.show()
    page.show_model("local", served)
    page.tabs.setCurrentWidget(page.jobs)
    view = page.jobs
    qtbot.waitUntil(lambda: [j["name"] for j in view.jobs] == ["nightly"], timeout=WAIT)
    return view


def listed(berth_home) -> dict:
    with LocalTransport(str(berth_home / "local")) as t:
        return job_service.jobs(t, "iris")[0]


def click(qtbot, button):
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_the_tab_lists_the_job(tab):
    assert tab.title.text() == "Jobs of iris on local"
    assert tab.jobs_model.text(0, "Job") == "nightly"
    assert tab.jobs_model.text(0, "Schedule") == "every 1d"
    assert tab.jobs_model.text(0, "Version") == "current"
    assert tab.jobs_model.text(0, "State") == "not run yet"
    assert tab.jobs_model.text(0, "Next run") != "—"
    assert tab.selected_name == "nightly" and tab.buttons["pause"].isEnabled()
    assert not tab.buttons["resume"].isEnabled()


def test_run_now_shows_the_run_in_the_table_the_chart_and_the_preview(tab, qtbot, berth_home, tmp_path):
    (tmp_path / "inbox" / "a.jsonl").write_text(GOOD + BAD)
    click(qtbot, tab.buttons["run"])
    qtbot.waitUntil(lambda: bool(tab.runs) and tab.runs[0]["state"] == "ok", timeout=WAIT)
    assert tab.message.text().startswith("job nightly: run ") and tab.message.text().endswith(" started.")
    assert tab.runs_model.rowCount() == 1
    assert (tab.runs_model.text(0, "Rows in"), tab.runs_model.text(0, "Rows out"), tab.runs_model.text(0, "Errors")) \
        == ("3", "2", "1")
    assert tab.runs_model.text(0, "Duration").endswith(" s")
    assert (tab.chart.rows_out, tab.chart.errors) == ([2], [1])
    qtbot.waitUntil(lambda: tab.results_model.rowCount() == 2 and tab.errors_model.rowCount() == 1, timeout=WAIT)
    headers = [c[0] for c in tab.results_model.columns]
    assert headers[:2] == ["input_ref", "class"] and headers[-3:] == ["time", "run_id", "model_version"]
    classes = {tab.results_model.text(r, "class") for r in range(2)}
    assert classes == {"setosa", "virginica"}
    assert tab.errors_model.text(0, "input_ref") == "a.jsonl:3"
    assert "rejected" in tab.errors_model.text(0, "reason")
    assert tab.results_box.title.text().endswith("(2)")

    (tmp_path / "inbox" / "b.jsonl").write_text(GOOD)
    click(qtbot, tab.buttons["run"])
    qtbot.waitUntil(lambda: len(tab.runs) == 2 and tab.runs[0]["state"] == "ok", timeout=WAIT)
    assert (tab.chart.rows_out, tab.chart.errors) == ([2, 2], [1, 0])  # oldest run left
    events = [(e["action"], e["outcome"]) for e in query_events(Workspace().db) if e["action"] == "job.run"]
    assert events == [("job.run", "ok"), ("job.run", "started")] * 2  # newest first, audited like the CLI's



def test_a_failed_run_makes_the_job_stand_out_as_failing(tab, qtbot, tmp_path):
    from PySide6.QtGui import QColor

    from app.ui.model.jobs_tables import FAILING

    (tmp_path / "out.db").write_bytes(b"not sqlite at all" * 64)
    (tmp_path / "inbox" / "a.jsonl").write_text(GOOD)
    click(qtbot, tab.buttons["run"])
    qtbot.waitUntil(lambda: tab.jobs_model.rowCount() == 1 and tab.jobs_model.text(0, "State") == "FAILING",
                    timeout=WAIT)
    state = tab.jobs_model.index(0, [c[0] for c in tab.jobs_model.columns].index("State"))
    assert state.data(Qt.ItemDataRole.ForegroundRole) == QColor(FAILING) and state.data(Qt.ItemDataRole.FontRole).bold()
    assert tab.jobs_model.index(0, 0).data(Qt.ItemDataRole.ForegroundRole) is None  # only the state cell
    qtbot.waitUntil(lambda: bool(tab.runs) and tab.runs[0]["state"] == "failed", timeout=WAIT)
    assert tab.runs_model.text(0, "State") == "failed" and "not a SQLite database" in tab.runs_model.text(0, "Detail")
    qtbot.waitUntil(lambda: tab.preview_banner.isVisible(), timeout=WAIT)  # the preview cannot read the output
    assert "cannot be read as SQLite" in tab.preview_banner.label.text()
    previews = tab._previewing
    tab.poll()
    qtbot.waitUntil(lambda: tab._poll.done, timeout=WAIT)
    assert tab._previewing is previews and tab.preview_banner.isVisible()  # not asked again until the next run

def test_pause_and_resume_change_the_state(tab, qtbot, berth_home):
    click(qtbot, tab.buttons["pause"])
    qtbot.waitUntil(lambda: tab.selected_job() is not None and bool(tab.selected_job()["paused"]), timeout=WAIT)
    assert tab.jobs_model.text(0, "State") == "paused" and tab.jobs_model.text(0, "Next run") == "—"
    assert listed(berth_home)["paused"] is True
    assert tab.buttons["resume"].isEnabled() and not tab.buttons["pause"].isEnabled()
    click(qtbot, tab.buttons["resume"])
    qtbot.waitUntil(lambda: tab.selected_job() is not None and not tab.selected_job()["paused"], timeout=WAIT)
    assert listed(berth_home)["paused"] is False and tab.jobs_model.text(0, "Next run") != "—"
    assert tab.message.text() == "job nightly: resumed."


def test_edit_with_a_bad_cron_shows_the_agents_message_and_changes_nothing(tab, qtbot, berth_home):
    before = listed(berth_home)
    click(qtbot, tab.buttons["edit"])
    qtbot.waitUntil(lambda: tab.dialog is not None and tab.dialog.isVisible(), timeout=5000)
    dialog = tab.dialog
    assert dialog.schedule_edit.text() == "1d" and dialog.kind_combo.currentData() == "every"
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("cron"))
    dialog.schedule_edit.setText("61 * * * *")
    click(qtbot, dialog.save_button)
    qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=WAIT)
    said = dialog.error_label.text()
    assert "minute" in said and "61" in said and "\n" not in said, said
    assert dialog.isVisible() and dialog.save_button.isEnabled()
    assert listed(berth_home) == before

    dialog.schedule_edit.setText("30 2 * * *")
    dialog.tz_edit.setText("Europe/Vienna")
    dialog.version_combo.setCurrentIndex(dialog.version_combo.findData("1.0.0"))
    click(qtbot, dialog.save_button)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: bool(tab.jobs) and tab.jobs[0]["schedule"] == "cron '30 2 * * *' (Europe/Vienna)", timeout=WAIT)
    after = listed(berth_home)
    assert (after["version"], after["tz"]) == ("1.0.0", "Europe/Vienna")
    edits = [e["outcome"] for e in query_events(Workspace().db) if e["action"] == "job.edit"]
    assert sorted(edits) == ["failed", "ok", "started", "started"], edits


def test_remove_asks_naming_the_job_then_add_from_the_console(tab, qtbot, berth_home, tmp_path):
    click(qtbot, tab.buttons["remove"])
    qtbot.waitUntil(lambda: tab.confirmation is not None and tab.confirmation.isVisible(), timeout=5000)
    box = tab.confirmation
    assert "nightly" in box.text() and "iris" in box.text() and "stays" in box.informativeText()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert listed(berth_home)["name"] == "nightly"
    click(qtbot, tab.buttons["remove"])
    qtbot.waitUntil(lambda: tab.confirmation is not None and tab.confirmation.isVisible(), timeout=5000)
    qtbot.mouseClick(tab.confirmation.confirm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.jobs == [] and tab.jobs_model.rowCount() == 0, timeout=WAIT)
    assert not tab.buttons["run"].isEnabled()

    click(qtbot, tab.add_button)
    qtbot.waitUntil(lambda: tab.dialog is not None and tab.dialog.isVisible(), timeout=5000)
    dialog = tab.dialog
    dialog.name_edit.setText("hourly")
    dialog.schedule_edit.setText("1h")
    dialog.input_dir_edit.setText(str(tmp_path / "missing"))
    dialog.output_edit.setText(f"sqlite:///{tmp_path}/out2.db")
    dialog.table_edit.setText("flowers")
    click(qtbot, dialog.save_button)
    qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=WAIT)
    assert "does not exist on the server" in dialog.error_label.text()
    dialog.input_dir_edit.setText(str(tmp_path / "inbox"))
    click(qtbot, dialog.save_button)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: [j["name"] for j in tab.jobs] == ["hourly"], timeout=WAIT)
    assert tab.selected_name == "hourly" and tab.jobs_model.text(0, "Schedule") == "every 1h"
    actions = [(e["action"], e["outcome"]) for e in query_events(Workspace().db) if e["action"] in ("job.add",
                                                                                                   "job.remove")]
    assert {("job.add", "ok"), ("job.add", "failed"), ("job.remove", "ok")} <= set(actions), actions


def test_state_and_schedule_helpers():
    assert job_state({"failing": True, "late": True}) == "FAILING"
    assert job_state({"late": True, "paused": True}) == "LATE"
    assert job_state({"paused": True, "last_state": "ok"}) == "paused"
    assert job_state({"last_state": "ok"}) == "ok"
    assert schedule_fields("every 10m") == ("every", "10m", "UTC")
    assert schedule_fields("cron '30 2 * * *' (Europe/Vienna)") == ("cron", "30 2 * * *", "Europe/Vienna")
    assert schedule_fields("every 1h (America/New_York)") == ("every", "1h", "America/New_York")
    assert schedule_fields("unreadable: nope") == ("every", "", "UTC")
    run = {"started": "2026-01-01T10:00:00Z", "state": "ok"}
    assert [duration(dict(run, ended=e)) for e in ("2026-01-01T10:00:00Z", "2026-01-01T10:00:07Z",
                                                   "2026-01-01T10:02:05Z")] == ["< 1 s", "7 s", "2 min 5 s"]
    assert duration(dict(run, state="running", ended=None)) == "running"



@pytest.fixture
def production(berth_home, tmp_path, sshd, task_runner):
    """iris and a job `nightly` on `prod` (the loopback sshd), a production server that requires a reason."""
    from app.store.servers import ServerConfig

    ws = Workspace()
    ws.servers.save(ServerConfig(name="prod", host=sshd.host, port=sshd.port, user=sshd.user,
                                 key_path=str(sshd.key_path), root=str(sshd.folder / "prod"), environment="production"))
    task_runner.trust_host_key("prod", sshd.fingerprint)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with ws.connect("prod", accept_fingerprint=sshd.fingerprint) as t:
        run_to_end(Deploy(t, iris_copy(tmp_path, "1.0.0"), ws.audit).run())
        ws.job_change(t, "add", "nightly", "iris", {
            "model": "iris", "schedule": {"every": "1d"}, "tz": "UTC",
            "input": {"kind": "dir", "path": str(inbox), "pattern": "*.jsonl"},
            "output": {"url": f"sqlite:///{tmp_path}/out.db", "table": "flowers"}, "version": None})
        row = status(t, "iris")[0]
    ws.set_setting("require_reason_production", "true")
    yield row
    from agent_kit import stop_all

    cleanup(sshd.folder / "prod")
    stop_all(sshd.folder / "prod")


def test_a_production_server_asks_for_the_reason_of_a_pause(qtbot, task_runner, production):
    page = ModelPage(task_runner)
    qtbot.addWidget(page)
    page.show()
    page.show_model("prod", production)
    page.tabs.setCurrentWidget(page.jobs)
    tab = page.jobs
    qtbot.waitUntil(lambda: [j["name"] for j in tab.jobs] == ["nightly"], timeout=WAIT)
    click(qtbot, tab.buttons["pause"])
    qtbot.waitUntil(lambda: tab.confirmation is not None and tab.confirmation.isVisible(), timeout=WAIT)
    assert "needs a reason" in tab.confirmation.text() and "nightly" in tab.confirmation.text()
    assert not tab.selected_job()["paused"]
    qtbot.keyClicks(tab.confirmation.reason, "CHG-42 upstream outage")
    qtbot.mouseClick(tab.confirmation.confirm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.selected_job() is not None and bool(tab.selected_job()["paused"]), timeout=WAIT)
    pauses = [(e["outcome"], e["reason"]) for e in query_events(Workspace().db) if e["action"] == "job.pause"]
    assert pauses == [("ok", "CHG-42 upstream outage"), ("started", "CHG-42 upstream outage")]
    assert [e["action"] for e in query_events(Workspace().db)].count("permission.denied") == 1
