"""The Jobs, Releases and Experiment tabs and the Alerts view gate their actions by the user's role
on the server (docs/permissions.md), against the real `local` server and a real policy.json: a viewer
sees them disabled with the role they need, an operator may run and pause jobs (and the agent does
it), a deployer may make an old release current and start an experiment, only off production."""
import pytest

from agent_kit import make_bundle
from alerts_kit import Receiver
from app.deploy import jobs as job_service
from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.deploy.queries import status
from app.remote.local import LocalTransport
from app.store.servers import LOCAL
from app.ui.alerts.page import AlertsPage
from app.ui.model.page import ModelPage
from app.workspace import Workspace
from jobs_kit import cleanup
from test_ui_alerts import add_disk_rule, evaluate
from test_ui_roles import ME, WAIT, shot
from test_ui_roles import write_policy as write_whole
from ui_kit import click


def write_policy(root, roles, production=False):
    write_whole(root, {"production": production, "roles": dict(roles, admin1={"*": "admin"})})


@pytest.fixture
def echo(berth_home, tmp_path, stop_local_runners):
    """echo 1.0.0 then 1.1.0 on `local` and a job `nightly` of it; returns its status."""
    ws = Workspace()
    (tmp_path / "inbox").mkdir()
    with LocalTransport(str(berth_home / "local")) as t:
        for version in ("1.0.0", "1.1.0"):
            folder = make_bundle(tmp_path / version, name="echo", version=version, example='{"x": 1}')
            run_to_end(Deploy(t, folder, ws.audit).run())
        ws.job_change(t, "add", "nightly", "echo", {
            "model": "echo", "schedule": {"every": "1d"}, "tz": "UTC",
            "input": {"kind": "dir", "path": str(tmp_path / "inbox"), "pattern": "*.jsonl"},
            "output": {"url": f"sqlite:///{tmp_path}/out.db", "table": "out"}, "version": None})
        yield status(t, "echo")[0]
    cleanup(berth_home / "local")


@pytest.mark.slow  # two deploys, a job and a dozen calls to the real agent: ~25 s alone, over a minute on a busy box
def test_the_model_pages_tabs_and_the_alerts_view_follow_the_role_on_the_server(qtbot, task_runner, berth_home, echo):
    root = berth_home / "local"
    hook = Receiver()
    try:
        add_disk_rule(root, hook.url)
        evaluate(root)
        model_page_roles(qtbot, task_runner, root, echo)
        alerts_roles(qtbot, task_runner, root)
    finally:
        hook.stop()


def model_page_roles(qtbot, task_runner, root, echo):
    write_policy(root, {ME: {"*": "viewer"}})
    page = ModelPage(task_runner)
    qtbot.addWidget(page)
    page.resize(1100, 700)
    page.show()
    page.show_model(LOCAL, echo)
    jobs, releases, experiment = page.jobs, page.releases_view, page.experiment
    page.tabs.setCurrentWidget(jobs)
    qtbot.waitUntil(lambda: page.header.role_label.text().startswith("you: viewer"), timeout=WAIT)
    qtbot.waitUntil(lambda: [j["name"] for j in jobs.jobs] == ["nightly"] and len(page.releases) == 2, timeout=WAIT)
    jobs.jobs_table.selectRow(0)  # the view enables its buttons for a selected job: the role keeps them off
    releases.select_version("1.0.0")
    gated = {"run": jobs.buttons["run"], "pause": jobs.buttons["pause"], "edit": jobs.buttons["edit"],
             "remove": jobs.buttons["remove"], "add": jobs.add_button, "make current": releases.make_current_button,
             "start experiment": experiment.start_button}
    assert [n for n, b in gated.items() if b.isEnabled()] == []
    assert jobs.buttons["run"].toolTip() == f"Needs the operator role; you ({ME}) have viewer. An admin can grant it."
    assert "Needs the deployer role" in releases.make_current_button.toolTip()
    assert "Needs the deployer role" in experiment.start_button.toolTip()
    shot(page, "model-jobs-viewer.png")

    write_policy(root, {ME: {"*": "viewer", "echo": "operator"}})  # a grant for this model only
    page.roles.forget()
    qtbot.waitUntil(lambda: page.header.role_label.text().startswith("you: operator"), timeout=WAIT)
    assert [n for n, b in gated.items() if b.isEnabled()] == ["run", "pause"]
    assert "Needs the deployer role" in jobs.buttons["edit"].toolTip()
    click(qtbot, jobs.buttons["pause"])  # the agent agrees: the job is paused
    qtbot.waitUntil(lambda: "paused" in jobs.message.text(), timeout=WAIT)
    with LocalTransport(str(root)) as t:
        assert job_service.jobs(t, "echo")[0]["paused"]
    qtbot.waitUntil(lambda: jobs.buttons["resume"].isEnabled(), timeout=WAIT)  # as the state allows, the role too

    write_policy(root, {ME: {"*": "deployer"}})
    page.roles.forget()
    qtbot.waitUntil(lambda: page.header.role_label.text().startswith("you: deployer"), timeout=WAIT)
    releases.select_version("1.0.0")
    assert releases.make_current_button.isEnabled() and experiment.start_button.isEnabled()
    assert jobs.buttons["edit"].isEnabled() and jobs.add_button.isEnabled()

    write_policy(root, {ME: {"*": "deployer"}}, production=True)
    page.roles.forget()
    qtbot.waitUntil(lambda: "production server" in page.header.role_label.text(), timeout=WAIT)
    assert not releases.make_current_button.isEnabled() and not experiment.start_button.isEnabled()
    assert releases.make_current_button.toolTip() == (f"Needs the releaser role on this production server; you "
                                                      f"({ME}) have deployer. An admin can grant it.")
    assert jobs.buttons["edit"].isEnabled()  # a job's definition needs the deployer, production or not
    page.tabs.setCurrentWidget(releases)
    shot(page, "model-releases-deployer-production.png")


def alerts_roles(qtbot, task_runner, root):
    write_policy(root, {ME: {"*": "viewer"}})
    page = AlertsPage(task_runner, lambda: [LOCAL])
    qtbot.addWidget(page)
    page.resize(900, 400)
    page.show()
    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=WAIT)
    page.table.selectRow(0)
    page.roles.forget()  # the model page's answer for `local` (a minute old at most) is this session's too
    qtbot.waitUntil(lambda: page.role_label.text().startswith("you: viewer"), timeout=WAIT)
    assert not page.silence_button.isEnabled() and not page.test_button.isEnabled()
    assert page.silence_button.toolTip() == f"Needs the operator role; you ({ME}) have viewer. An admin can grant it."
    shot(page, "alerts-viewer.png")
    write_policy(root, {ME: {"*": "operator"}})
    page.roles.forget()
    qtbot.waitUntil(lambda: page.role_label.text().startswith("you: operator"), timeout=WAIT)
    assert page.silence_button.isEnabled() and page.test_button.isEnabled()
    assert page.silence_button.toolTip().startswith("Send nothing")


def test_a_refused_button_stays_off_whatever_its_view_does_and_gets_back_the_views_state(qtbot, task_runner):
    """The gate's own mechanics without a server: `whoami` answers handed to it as the agent gives them."""
    page = ModelPage(task_runner)
    qtbot.addWidget(page)
    gate, jobs, releases = page.roles, page.jobs, page.releases_view
    gate.server = "s"
    gate._got({"user": "al", "production": True, "roles": {"*": "operator"}}, "s")
    jobs.buttons["run"].setEnabled(True)  # what a job selection does
    jobs.buttons["edit"].setEnabled(True)
    releases.make_current_button.setEnabled(True)
    assert jobs.buttons["run"].isEnabled() and not jobs.buttons["edit"].isEnabled()
    assert not releases.make_current_button.isEnabled() and "releaser role on this production" in \
        releases.make_current_button.toolTip()
    assert not page.experiment.promote_button.isEnabled() and not page.experiment.stop_button.isEnabled()
    page.experiment.set_busy(False)  # the experiment view enables its buttons when a call ends
    assert not page.experiment.promote_button.isEnabled()
    gate.server = "t"
    gate._got({"user": "al", "production": False, "roles": {"*": "deployer"}}, "t")
    assert jobs.buttons["edit"].isEnabled() is False  # released: the view's own state (no job selected)
    assert not releases.make_current_button.isEnabled()  # nor a release
    assert releases.make_current_button.toolTip().startswith("Switch the model")
    assert page.experiment.promote_button.isEnabled()  # not busy
    jobs.buttons["edit"].setEnabled(True)
    assert jobs.buttons["edit"].isEnabled()
    gate.show("s")  # back to a server asked a moment ago: its answer is reused, no second call
    assert gate.me["production"] is True and not jobs.buttons["edit"].isEnabled()

    alerts = AlertsPage(task_runner, lambda: [])
    qtbot.addWidget(alerts)
    alerts.roles.server = "s"
    alerts.roles._got({"user": "al", "production": False, "roles": {"*": "viewer", "m": "operator"}}, "s")
    alerts.silence_button.setEnabled(True)
    assert not alerts.silence_button.isEnabled() and alerts.role_label.text() == "you: viewer (al)"
    alerts.roles.show("s", "m")  # an alert of model m, where a grant raises the role
    alerts.silence_button.setEnabled(True)
    assert alerts.silence_button.isEnabled() and alerts.role_label.text() == "you: operator (al)"


def test_the_fleet_menu_disables_an_entry_a_known_role_refuses_on_any_target(qtbot, task_runner):
    from PySide6.QtWidgets import QLabel, QTreeView, QWidget

    from app.ui.servers.fleet_menu import FleetMenu
    from app.ui.servers.role_gate import RoleGate

    class Fleet(QTreeView):  # the selection, as the fleet tree gives it
        servers, models = ["prod", "stage", "unasked"], [("prod", "iris"), ("stage", "iris")]

        def selected_servers(self):
            return self.servers

        def selected_models(self):
            return self.models

    window = QWidget()
    qtbot.addWidget(window)
    window.runner, window.fleet = task_runner, Fleet()
    menu = FleetMenu(window)
    gate = RoleGate(window, QLabel(), [])  # the answers the session's gates got
    for server, me in (("prod", {"user": "al", "production": True, "roles": {"*": "deployer"}}),
                       ("stage", {"user": "al", "production": False, "roles": {"*": "operator", "iris": "deployer"}})):
        gate.server = server
        gate._got(me, server)
    entries = {a.text().split()[0]: a for a in menu.actions()}
    assert not entries["Deploy"].isEnabled() and entries["Deploy"].toolTip() == (
        "prod: Needs the releaser role on this production server; you (al) have deployer. An admin can grant it.")
    assert not entries["Roll"].isEnabled() and entries["Roll"].toolTip().startswith("iris on prod: Needs the releaser")
    assert entries["Stop"].isEnabled() and entries["Start"].isEnabled()
    window.fleet.servers = ["stage", "unasked"]  # a per-model deployer may deploy there; unasked: the agent decides
    assert [a.isEnabled() for a in menu.actions()][0] is True
