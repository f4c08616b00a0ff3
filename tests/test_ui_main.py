"""The whole console, end to end, the way an operator uses it: add a real server (a loopback OpenSSH
sshd), trust its host key, drop a bundle on it, see the model running, predict, deploy a second
version, roll back with the button, and find every step in the audit log. Nothing is mocked."""
import json

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel, QPushButton

from agent_kit import stop_all
from app.ui.deploy.dialog import DeployDialog
from app.ui.main_window import MainWindow
from app.ui.servers.dialog import ServerDialog
from cli_kit import iris_copy
from ui_kit import SLOW, click, fill, reach_confirmation, w, wait_host_key_dialog

WAIT = 90000


@pytest.fixture
def window(qtbot, task_runner):
    win = MainWindow(task_runner)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


@pytest.fixture
def box_root(sshd):
    root = sshd.folder / "root box"
    yield root
    stop_all(root)


def drop_on(view, row_rect, path) -> None:
    """A file manager's drag of `path` onto a row of the fleet tree: enter, move, drop."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    at = row_rect.center()
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    for event in (QDragEnterEvent(at, *args), QDragMoveEvent(at, *args), QDropEvent(QPointF(at), *args)):
        QApplication.sendEvent(view.viewport(), event)
        assert event.isAccepted(), event.type()


def deploy_through(qtbot, window, start) -> DeployDialog:
    """`start()` opens the deploy dialog; confirm, deploy, wait for the end, close it."""
    start()
    qtbot.waitUntil(lambda: window.findChild(DeployDialog) is not None, timeout=5000)
    dialog = window.findChild(DeployDialog)
    reach_confirmation(qtbot, dialog)
    with qtbot.waitSignal(dialog.changed, timeout=WAIT):
        click(qtbot, dialog.deploy_button)
    dialog.close()
    dialog.deleteLater()
    qtbot.waitUntil(lambda: window.findChild(DeployDialog) is None, timeout=5000)
    return dialog


def fleet_row(window, server, model=""):
    m = window.fleet_model
    item = m.model_item(server, model) if model else m.server_item(server)
    if item is None:
        return None
    state = m.itemFromIndex(item.index().siblingAtColumn(1))
    return item.text(), state.text()


def test_operator_session_against_a_real_ssh_server(qtbot, window, sshd, box_root, tmp_path):
    assert window.windowTitle().startswith("Berth")
    qtbot.waitUntil(lambda: fleet_row(window, "local") is not None, timeout=10000)

    # Add the server; its unknown host key is shown and trusted deliberately.
    window.add_server_action.trigger()
    dialog = window.findChild(ServerDialog)
    fill(dialog, sshd, name="box", root=str(box_root))
    with qtbot.waitSignal(dialog.saved, timeout=SLOW):
        click(qtbot, w(dialog, QPushButton, "saveButton"))
        host_key = wait_host_key_dialog(qtbot, dialog)
        assert w(host_key, QLabel, "fingerprintLabel").text() == sshd.fingerprint
        click(qtbot, w(host_key, QPushButton, "trustButton"))
    qtbot.waitUntil(lambda: (fleet_row(window, "box") or ("", ""))[1] == "connected", timeout=SLOW)
    assert fleet_row(window, "box")[0] == "box"  # under its group, "staging"
    assert window.fleet_model.server_item("box").parent().text() == "staging"

    # Drop iris 1.0.0 on the server's row.
    fleet = window.fleet
    rect = fleet.visualRect(window.fleet_model.server_item("box").index())
    deploy_through(qtbot, window, lambda: drop_on(fleet, rect, iris_copy(tmp_path, "1.0.0")))
    qtbot.waitUntil(lambda: fleet_row(window, "box", "iris") == ("iris  1.0.0", "running"), timeout=SLOW)

    # Select it: its page shows it; predict with the bundle's own example.
    fleet.select("box", "iris")
    page = window.model_page
    assert window.stack.currentWidget() is page
    qtbot.waitUntil(lambda: page.header.version_label.text() == "1.0.0", timeout=SLOW)
    page.tabs.setCurrentWidget(page.predict)
    qtbot.waitUntil(lambda: page.predict.input.toPlainText().strip() != "", timeout=SLOW)
    with qtbot.waitSignal(page.predict.answered, timeout=SLOW):
        click(qtbot, page.predict.send_button)
    answer = json.loads(page.predict.output.toPlainText())
    assert [a["class"] for a in answer] == ["setosa", "versicolor", "virginica"], answer
    assert page.predict.latency.text().startswith("Answered in ")

    # Deploy 1.1.0 through File → Deploy (the path an operator would pick).
    deploy_through(qtbot, window, lambda: window.deploy_bundle("box", str(iris_copy(tmp_path, "1.1.0"))))
    qtbot.waitUntil(lambda: fleet_row(window, "box", "iris") == ("iris  1.1.0", "running"), timeout=SLOW)
    qtbot.waitUntil(lambda: page.header.version_label.text() == "1.1.0", timeout=SLOW)
    qtbot.waitUntil(page.header.rollback_button.isEnabled, timeout=SLOW)  # once the releases are read

    # Roll back with the button; the confirmation names both versions.
    click(qtbot, page.header.rollback_button)
    qtbot.waitUntil(lambda: page.confirmation is not None and page.confirmation.isVisible(), timeout=5000)
    assert "1.1.0" in page.confirmation.text() and "1.0.0" in page.confirmation.text()
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        click(qtbot, page.confirmation.confirm_button)
    qtbot.waitUntil(lambda: fleet_row(window, "box", "iris") == ("iris  1.0.0", "running"), timeout=SLOW)
    qtbot.waitUntil(lambda: page.header.version_label.text() == "1.0.0"
                    and page.releases_view.model.current_version() == "1.0.0", timeout=SLOW)

    # The audit log has the whole story, newest first.
    window.show_audit()
    audit = window.audit_page
    wanted = [("rollback", "1.0.0"), ("deploy", "1.1.0"), ("deploy", "1.0.0"), ("server.add", ""),
              ("hostkey.trust", "")]

    def story():
        rows = [r for r in audit.model.rows if r.get("server") == "box" and r.get("outcome") == "ok"]
        return [(r["action"], r.get("version") or "") for r in rows]

    qtbot.waitUntil(lambda: [s for s in story() if s in wanted] == wanted, timeout=SLOW)


def test_layout_is_remembered(qtbot):
    first = MainWindow()  # each window has its own runner, shut down when it closes
    qtbot.addWidget(first)
    first.show()
    first.resize(1100, 700)
    first.splitter.setSizes([420, 680])
    sizes = first.splitter.sizes()
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    assert abs(second.width() - 1100) <= 4 and abs(second.height() - 700) <= 4  # the frame may differ a little
    assert abs(second.splitter.sizes()[0] - sizes[0]) <= 4
    second.close()


def test_standard_shortcuts(window):
    from PySide6.QtGui import QKeySequence

    found = {a.text().replace("&", ""): a.shortcuts() for a in window.findChildren(type(window.refresh_action))}
    for text, key in (("Quit", "Ctrl+Q"), ("Refresh", "F5"), ("Filter", "Ctrl+F"), ("Remove selected server…", "Del")):
        assert QKeySequence(key) in found[text], (text, found[text])
    assert found["Deploy folder…"] == [QKeySequence("Ctrl+D")] and found["Deploy archive…"] == [QKeySequence("Ctrl+Shift+D")]


def answer_next_question(qtbot, button):
    """Click `button` on the next modal question box (QMessageBox.question runs its own loop)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    def click_it():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(button).click()
        else:
            QTimer.singleShot(20, click_it)

    QTimer.singleShot(20, click_it)


def add_trusted(name, srv, root):
    from app.store.servers import ServerConfig
    from app.workspace import Workspace

    Workspace().add_server(ServerConfig(name=name, host=srv.host, port=srv.port, user=srv.user,
                                        key_path=str(srv.key_path), root=str(root)), srv.fingerprint)


def test_delete_asks_first_and_cancel_keeps_the_server(qtbot, task_runner, sshd, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    add_trusted("gone", sshd, tmp_path / "r")
    win = MainWindow(task_runner)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: fleet_row(win, "gone") is not None, timeout=SLOW)
    win.fleet.select("gone")
    answer_next_question(qtbot, QMessageBox.StandardButton.Cancel)
    win.delete_action.trigger()
    assert fleet_row(win, "gone") is not None
    answer_next_question(qtbot, QMessageBox.StandardButton.Yes)
    win.delete_action.trigger()
    qtbot.waitUntil(lambda: fleet_row(win, "gone") is None, timeout=SLOW)
    from app.workspace import Workspace
    assert [s.name for s in Workspace().servers.list()] == ["local"]


def test_a_host_that_goes_away_and_comes_back(qtbot, task_runner, sshd_factory, tmp_path):
    srv = sshd_factory()
    root = tmp_path / "r"
    add_trusted("flaky", srv, root)
    from app.deploy.deploy import Deploy
    from app.deploy.changes import run_to_end
    from app.workspace import Workspace

    ws = Workspace()
    with ws.connect("flaky") as t:
        run_to_end(Deploy(t, iris_copy(tmp_path, "1.0.0"), ws.audit).run())
    try:
        win = MainWindow(task_runner)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitUntil(lambda: fleet_row(win, "flaky", "iris") == ("iris  1.0.0", "running"), timeout=SLOW)
        win.fleet.select("flaky", "iris")
        qtbot.waitUntil(lambda: win.model_page.header.version_label.text() == "1.0.0", timeout=SLOW)

        import psutil

        for child in psutil.Process(srv.proc.pid).children(recursive=True):
            try:
                child.kill()  # the host goes away: its sessions die with it (the console's one connection too)
            except psutil.NoSuchProcess:
                pass  # a short-lived command of a session (a shell's `pyenv init`) ended meanwhile
        srv.stop()
        task_runner.disconnect("flaky")
        win.refresh_action.trigger()
        qtbot.waitUntil(lambda: fleet_row(win, "flaky")[1] == "unreachable", timeout=SLOW)
        assert fleet_row(win, "flaky", "iris") == ("iris  1.0.0", "running")  # last known, kept
        assert win.model_page.header.version_label.text() == "1.0.0"

        srv.start()
        win.refresh_action.trigger()
        qtbot.waitUntil(lambda: fleet_row(win, "flaky")[1] == "connected", timeout=SLOW)
        assert fleet_row(win, "flaky", "iris") == ("iris  1.0.0", "running")
    finally:
        stop_all(root)


def test_the_current_fleet_row_shows_its_page_again(qtbot, window):
    """Opened from the menu, the Monitor does not move the fleet's current row; clicking that row
    (or selecting it) must bring its page back."""
    qtbot.waitUntil(lambda: window.fleet_model.server_item("local") is not None, timeout=SLOW)
    window.fleet.select("local")
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.server_page, timeout=SLOW)
    window.monitor_action.trigger()
    assert window.stack.currentWidget() is window.monitor_page
    window.fleet.select("local")
    assert window.stack.currentWidget() is window.server_page
    window.show_audit()
    rect = window.fleet.visualRect(window.fleet.currentIndex())
    qtbot.mouseClick(window.fleet.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.stack.currentWidget() is window.server_page


def test_a_server_added_with_the_cli_appears_without_a_restart(qtbot, window):
    """The console and the CLI share the server list: one added by `berth server add` (here saved as
    the CLI saves it) shows up by itself within seconds, and one removed goes."""
    from app.store.servers import ServerConfig
    from app.ui.main_window import SERVER_LIST_MS
    from app.workspace import Workspace

    qtbot.waitUntil(lambda: window.fleet_model.server_item("local") is not None, timeout=SLOW)
    cli = Workspace()  # another process's view of the same BERTH_HOME
    cli.servers.save(ServerConfig(name="from-cli", host="127.0.0.1", port=9, user="nobody", root="~/berth"))
    qtbot.waitUntil(lambda: window.fleet_model.server_item("from-cli") is not None, timeout=SERVER_LIST_MS + 4000)
    cli.servers.remove("from-cli")
    window.refresh_action.trigger()  # Refresh reads the list again too
    qtbot.waitUntil(lambda: window.fleet_model.server_item("from-cli") is None, timeout=4000)
