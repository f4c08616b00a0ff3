"""Four eyes on the server page: a change waiting there is listed with what it will change; the
requester's own Approve is refused by the server and said on the page; Reject withdraws it."""
import json
import os
import pwd

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton

from agent_kit import call
from app.store.servers import LOCAL
from app.ui.servers.page import ServerPage
from app.workspace import Workspace

ME = pwd.getpwuid(os.getuid()).pw_name


def test_a_waiting_change_is_listed_and_decided_on_the_server_page(qtbot, task_runner, berth_home):
    ws = Workspace()
    root = berth_home / "local"
    root.mkdir(exist_ok=True)
    (root / "policy.json").write_text(json.dumps({"production": True, "four_eyes": {"*": True},
                                                  "roles": {ME: {"*": "admin"}}}))
    os.chmod(root / "policy.json", 0o644)
    _, error, _ = call(root, "rollback", model="iris", to="1.0.0", reason="night alert")
    rid = error["request"]
    page = ServerPage(task_runner)
    qtbot.addWidget(page)
    page.show()
    page.show_server(ws.servers.get(LOCAL))
    label = page.findChild(QLabel, "approvalsLabel")
    qtbot.waitUntil(lambda: "1 change(s) waiting" in label.text(), timeout=30000)
    texts = [w.text() for w in page.approvals_panel.findChildren(QLabel)]
    assert any(rid in t and "roll iris back from nothing to 1.0.0" in t and "night alert" in t for t in texts), texts

    qtbot.mouseClick(page.findChild(QPushButton, f"approve-{rid}"), Qt.MouseButton.LeftButton)
    box = page.approvals_panel.confirmation
    assert box.defaultButton() is box.button(box.StandardButton.Cancel)
    qtbot.mouseClick(box.confirm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "yourself" in label.text(), timeout=30000)  # four eyes: not the requester

    qtbot.mouseClick(page.findChild(QPushButton, f"reject-{rid}"), Qt.MouseButton.LeftButton)
    box = page.approvals_panel.confirmation
    qtbot.keyClicks(box.reason, "not needed")
    qtbot.mouseClick(box.confirm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: label.text() == "none waiting", timeout=30000)
    done = [e for e in ws.audit.list(limit=20) if e["action"] == "approval.rejected" and e["outcome"] == "ok"]
    assert len(done) == 1 and done[0]["reason"] == "not needed"


def test_approve_shows_the_digest_and_the_server_refuses_a_request_changed_since(qtbot, task_runner, berth_home):
    from test_approvals import rewrite

    ws = Workspace()
    root = berth_home / "local"
    root.mkdir(exist_ok=True)
    (root / "policy.json").write_text(json.dumps({"production": True, "four_eyes": {"*": True},
                                                  "roles": {ME: {"*": "admin"}}}))
    os.chmod(root / "policy.json", 0o644)
    rid = call(root, "rollback", model="iris", to="1.0.0")[1]["request"]
    page = ServerPage(task_runner)
    qtbot.addWidget(page)
    page.show()
    page.show_server(ws.servers.get(LOCAL))
    label = page.findChild(QLabel, "approvalsLabel")
    qtbot.waitUntil(lambda: "1 change(s) waiting" in label.text(), timeout=30000)
    seen = call(root, "approvals")[0]["requests"][0]["digest"]
    rewrite(root, rid, requested_uid=4242, requested_by="mallory", request={"to": "0.0.1"})  # after the page looked
    qtbot.mouseClick(page.findChild(QPushButton, f"approve-{rid}"), Qt.MouseButton.LeftButton)
    box = page.approvals_panel.confirmation
    assert seen in box.text() and "0.0.1" not in box.text(), box.text()
    qtbot.mouseClick(box.confirm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "changed since you looked at it" in label.text(), timeout=30000)
    assert [e["outcome"] for e in ws.audit.list(limit=20) if e["action"] == "approval.changed"] == ["refused"]
    assert call(root, "approvals")[0]["requests"][0]["state"] == "pending"
