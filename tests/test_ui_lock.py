"""The server page shows who holds the server lock, and breaks it only after a confirmation whose
default is Cancel."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox

from app.store.servers import LOCAL
from app.ui.servers.page import ServerPage
from app.workspace import Workspace
from test_agent_lock import end, hold_lock


def test_held_lock_is_shown_and_broken_after_confirmation(qtbot, task_runner, tmp_path, berth_home):
    ws = Workspace()
    proc = hold_lock(tmp_path, berth_home / "local")
    try:
        page = ServerPage(task_runner)
        qtbot.addWidget(page)
        page.show()
        page.show_server(ws.servers.get(LOCAL))
        label = page.findChild(QLabel, "lockLabel")
        qtbot.waitUntil(lambda: "held by alice@laptop" in label.text(), timeout=10000)
        assert "deploy iris 2.0.0" in label.text() and str(proc.pid) in label.text()

        qtbot.mouseClick(page.lock_panel.button, Qt.MouseButton.LeftButton)
        box = page.lock_panel.confirmation
        assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Cancel).click()
        qtbot.wait(200)
        assert proc.poll() is None  # Cancel ends nothing

        qtbot.mouseClick(page.lock_panel.button, Qt.MouseButton.LeftButton)
        box = page.lock_panel.confirmation
        qtbot.keyClicks(box.reason, "stuck since lunch")
        qtbot.mouseClick(box.confirm_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: label.text() == "free", timeout=20000)
        assert proc.wait(10) is not None
        assert not page.lock_panel.button.isVisible()
        done = ws.audit.list(limit=1)[0]
        assert (done["action"], done["outcome"], done["reason"]) == ("lock.break", "ok", "stuck since lunch")
    finally:
        end(proc)
