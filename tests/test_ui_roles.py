"""The console reflects the server's roles (docs/permissions.md): the role per server and model, the
actions it does not allow disabled with the role they need, and an admin's policy editor with a diff
before saving. Against the real `local` server, whose policy.json the test writes as its owner."""
import json
import os

import pytest
from PySide6.QtWidgets import QComboBox

from agent_kit import make_bundle
from app.deploy.changes import run_to_end
from app.deploy.deploy import Deploy
from app.deploy.policy import describe, edits
from app.deploy.queries import status
from app.remote.local import LocalTransport
from app.store.servers import LOCAL
from app.ui.model.page import ModelPage
from app.ui.servers.page import ServerPage
from app.workspace import Workspace
from ui_kit import click

WAIT = 60000
SHOTS = os.environ.get("BERTH_SHOTS", "")  # a folder: the views are saved there as PNGs (to look at them)
ME = "root" if os.getuid() == 0 else os.environ.get("USER", "")


def write_policy(root, policy):
    root.mkdir(exist_ok=True)
    (root / "policy.json").write_text(json.dumps(policy))
    os.chmod(root / "policy.json", 0o644)


def shot(widget, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        widget.grab().save(os.path.join(SHOTS, name))


@pytest.fixture
def echo(berth_home, tmp_path, stop_local_runners):
    """echo 1.0.0 then 1.1.0 deployed and running on `local`; returns its status."""
    with LocalTransport(str(berth_home / "local")) as t:
        for version in ("1.0.0", "1.1.0"):
            folder = make_bundle(tmp_path / version, name="echo", version=version, example='{"x": 1}')
            run_to_end(Deploy(t, folder, Workspace().audit).run())
        return status(t, "echo")[0]


def test_a_viewer_sees_its_role_and_the_actions_it_may_not_take_disabled_with_the_role_they_need(
        qtbot, task_runner, berth_home, echo):
    write_policy(berth_home / "local", {"roles": {ME: {"*": "viewer", "echo": "operator"}, "admin1": {"*": "admin"}}})
    page = ServerPage(task_runner)
    qtbot.addWidget(page)
    page.resize(900, 600)
    page.show()
    page.show_server(Workspace().servers.get(LOCAL))
    qtbot.waitUntil(lambda: page.role_label.text().startswith("you: viewer"), timeout=WAIT)
    assert page.role_label.text() == f"you: viewer ({ME})"
    assert not page.deploy_button.isEnabled()
    assert page.deploy_button.toolTip() == f"Needs the deployer role; you ({ME}) have viewer. An admin can grant it."
    assert not page.policy_button.isEnabled() and "Needs the admin role" in page.policy_button.toolTip()
    example = page.findChild(type(page.deploy_button), "deploy-example-iris")
    assert not example.isEnabled() and "Needs the deployer role" in example.toolTip()
    shot(page, "server-page-viewer.png")

    model = ModelPage(task_runner)
    qtbot.addWidget(model)
    model.resize(1000, 600)
    model.show()
    model.show_model(LOCAL, echo)
    label = model.header.role_label
    qtbot.waitUntil(lambda: label.text().startswith("you: operator"), timeout=WAIT)  # a per-model grant raises it
    qtbot.waitUntil(lambda: len(model.releases) == 2, timeout=WAIT)
    header = model.header
    assert not header.rollback_button.isEnabled() and "Needs the deployer role" in header.rollback_button.toolTip()
    assert header.stop_button.isEnabled()  # an operator may stop
    model.show_model(LOCAL, dict(echo))  # a status refresh enables by state: the role still disables
    assert not header.rollback_button.isEnabled()
    shot(model, "model-header-operator.png")


def test_an_admin_edits_the_policy_with_a_diff_before_saving(qtbot, task_runner, berth_home):
    root = berth_home / "local"
    write_policy(root, {"roles": {ME: {"*": "admin"}}})
    page = ServerPage(task_runner)
    qtbot.addWidget(page)
    page.show()
    page.show_server(Workspace().servers.get(LOCAL))
    qtbot.waitUntil(lambda: page.role_label.text().startswith("you: admin"), timeout=WAIT)
    assert page.policy_button.isEnabled() and page.deploy_button.isEnabled()
    assert page.findChild(type(page.deploy_button), "deploy-example-iris").isEnabled()
    click(qtbot, page.policy_button)
    dialog = page.policy_dialog
    qtbot.waitUntil(lambda: dialog.shown is not None and dialog.table.rowCount() == 1, timeout=WAIT)
    assert dialog.diff.toPlainText() == "No changes." and not dialog.save_button.isEnabled()
    dialog.add_row("@ops", "fraud", "viewer")
    dialog.table.cellWidget(1, 2).setCurrentText("deployer")
    dialog.production.setChecked(True)
    assert dialog.diff.toPlainText().splitlines() == ["+ @ops: deployer on fraud", "~ production: false -> true"]
    dialog.table.item(1, 0).setText("bob smith")
    assert dialog.diff.toPlainText().startswith("Cannot save: invalid user") and not dialog.save_button.isEnabled()
    dialog.table.item(1, 0).setText("@ops")
    shot(dialog, "policy-dialog.png")
    click(qtbot, dialog.save_button)
    qtbot.waitUntil(lambda: dialog.diff.toPlainText() == "No changes.", timeout=WAIT)
    on_disk = json.loads((root / "policy.json").read_text())
    assert on_disk == {"production": True, "roles": {ME: {"*": "admin"}, "@ops": {"fraud": "deployer"}}}
    changed = [e for e in Workspace().audit.list(limit=20) if e["action"] == "policy.changed"]
    assert [e["outcome"] for e in changed].count("ok") == 2, changed  # one per change, as the CLI does
    qtbot.waitUntil(lambda: "production server" in page.role_label.text(), timeout=WAIT)  # asked again
    rows = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert rows == ["@ops", ME]  # as the server has them now, sorted
    dialog.table.selectRow(0)
    click(qtbot, dialog.findChild(type(dialog.save_button), "removeGrant"))
    assert dialog.diff.toPlainText() == "- @ops: deployer on fraud"
    assert isinstance(dialog.table.cellWidget(0, 2), QComboBox) and dialog.save_button.isEnabled()


def test_the_edits_between_two_policies():
    before = {"production": True, "roles": {"a": {"*": "admin"}, "b": {"*": "viewer", "m": "deployer"}}}
    after = {"production": False, "roles": {"a": {"*": "admin"}, "b": {"*": "operator"}, "@c": {"m": "viewer"}}}
    assert edits(before, after) == [("grant", "@c", "viewer", "m"), ("grant", "b", "operator", "*"),
                                    ("revoke", "b", "deployer", "m"), ("production", False)]
    assert [describe(e) for e in edits(before, after)][-2:] == ["- b: deployer on m", "~ production: true -> false"]
    assert edits(after, after) == []


def test_another_servers_refusals_do_not_stay_and_a_production_change_needs_the_releaser(qtbot, task_runner):
    from PySide6.QtWidgets import QLabel, QPushButton, QWidget

    from app.ui.servers.role_gate import RoleGate

    view = QWidget()
    qtbot.addWidget(view)
    view.runner = task_runner
    deploy, stop = QPushButton("Deploy"), QPushButton("Stop")
    deploy.setToolTip("Deploy a bundle")
    gate = RoleGate(view, QLabel(), [("deploy", deploy), ("stop", stop)], owns_enabled=True)
    gate.server = "prod"
    gate._got({"user": "alice", "production": True, "roles": {"*": "deployer"}})
    assert not deploy.isEnabled() and stop.isEnabled()
    assert deploy.toolTip() == ("Needs the releaser role on this production server; you (alice) have deployer. "
                                "An admin can grant it.")
    assert gate.label.text() == "you: deployer (alice) · production server"
    gate.server = "staging"
    gate._got({"user": "alice", "production": False, "roles": {"*": "deployer"}})
    assert deploy.isEnabled() and deploy.toolTip() == "Deploy a bundle"
    gate._got({"user": "alice", "production": False, "roles": {"*": None}})
    assert not deploy.isEnabled() and not stop.isEnabled() and "you (alice) have no role" in stop.toolTip()
