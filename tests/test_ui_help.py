"""The first run and the Help menu, driven as a new operator would: the welcome appears once, "Try it on
this computer" deploys the iris example to `local` and opens it, the guide inside the app is the
repository's docs/user-guide.md, the shortcut list is what the keys really do, About names what Berth
brings and under which licence."""
from pathlib import Path

import pytest
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel, QPushButton

from agent_kit import stop_all
from app import __version__
from app.ui.deploy.dialog import DeployDialog
from app.ui.help.about_view import AboutDialog
from app.ui.help.guide_view import GuideDialog
from app.ui.help.welcome_view import WelcomeDialog
from app.ui.help.shortcuts_view import shortcut_rows
from app.ui.main_window import MainWindow
from app.ui.servers.dialog import ServerDialog
from ui_kit import SLOW, click, reach_confirmation, w

REPO_GUIDE = Path(__file__).resolve().parent.parent / "docs" / "user-guide.md"


@pytest.fixture
def window(qtbot, task_runner, berth_home):
    win = MainWindow(task_runner)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    stop_all(berth_home / "local")


def help_actions(window):
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_the_help_menu_has_the_guide_the_shortcuts_the_welcome_and_about(window):
    assert help_actions(window) == ["&User guide", "&Keyboard shortcuts", "&Welcome…", "&About Berth"]
    assert window.help.guide_action.shortcut().toString() == "F1"


def test_the_guide_shows_the_repository_file_with_its_contents_and_search(qtbot, window):
    dialog = window.help.show_guide()
    assert isinstance(dialog, GuideDialog)
    text = dialog.text.toPlainText()
    assert "Berth user guide" in text and "berth rollback iris --server local" in text
    headings = dialog.headings()
    expected = [line.lstrip("# ").strip() for line in REPO_GUIDE.read_text().splitlines() if line.startswith("## ")]
    assert [h for h in headings if h in expected] == expected  # every section, in order
    dialog.contents.itemClicked.emit(dialog.contents.item(headings.index("8. Does the new version do better?")))
    assert dialog.text.textCursor().block().text() == "8. Does the new version do better?"
    dialog.search.setText("failure budget")
    assert dialog.find_next() and dialog.text.textCursor().selectedText() == "failure budget"
    dialog.search.setText("no such words anywhere in it")
    assert not dialog.find_next()
    assert window.help.show_guide() is dialog  # F1 again brings the same window forward


def test_the_shortcut_list_is_read_from_the_menus(window):
    rows = shortcut_rows(window)
    assert ("File", "Add server", "Ctrl+N") in rows
    keys = {(menu, action): k.split(", ") for menu, action, k in rows}
    assert "F1" in keys["Help", "User guide"]
    assert ("Help", "Keyboard shortcuts", "Ctrl+/") in rows
    # a key given to an action later shows up: the list is the menus, not a copy of them
    window.help.welcome_action.setShortcut(QKeySequence("Ctrl+Shift+W"))
    assert ("Help", "Welcome", "Ctrl+Shift+W") in shortcut_rows(window)


def test_about_names_the_version_and_the_licences_of_what_berth_brings(window):
    dialog = window.help.show_about()
    assert isinstance(dialog, AboutDialog)
    assert f"Berth {__version__}" in w(dialog, QLabel, "aboutHead").text()
    rows = {dialog.table.item(r, 0).text().lower(): dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())}
    assert "LGPL" in rows["pyside6_essentials"] or "LGPL" in rows.get("pyside6-essentials", "")
    assert "LGPL" in rows["paramiko"]
    assert {"pyqtgraph", "psutil", "keyring", "numpy", "cryptography"} <= set(rows)
    assert "pytest" not in rows  # a test extra is not shipped


def test_the_welcome_appears_at_the_first_start_only(qtbot, window, berth_home):
    first = window.help.first_run()
    assert isinstance(first, WelcomeDialog) and first.isVisible()
    where = [label.text() for label in first.findChildren(QLabel)]
    assert str(berth_home) in where and str(berth_home / "berth.sqlite") in where
    first.reject()
    assert window.help.first_run() is None  # seen: not again
    again = window.help.show_welcome()  # Help ▸ Welcome still opens it
    again.every_start.setChecked(True)
    again.reject()
    shown = window.help.first_run()
    assert isinstance(shown, WelcomeDialog)  # asked for at every start
    shown.reject()


def test_add_your_first_server_opens_the_server_dialog(qtbot, window):
    welcome = window.help.show_welcome()
    click(qtbot, w(welcome, QPushButton, "welcomeAdd"))
    qtbot.waitUntil(lambda: window.findChild(ServerDialog) is not None, timeout=5000)
    assert not welcome.isVisible()
    window.findChild(ServerDialog).reject()


def test_try_it_on_this_computer_deploys_the_example_and_opens_it(qtbot, window):
    welcome = window.help.show_welcome()
    click(qtbot, w(welcome, QPushButton, "welcomeTry"))
    qtbot.waitUntil(lambda: window.findChild(DeployDialog) is not None, timeout=5000)
    dialog = window.findChild(DeployDialog)
    assert dialog.server == "local" and dialog.path.name == "iris"
    reach_confirmation(qtbot, dialog)
    with qtbot.waitSignal(dialog.changed, timeout=90000):
        click(qtbot, dialog.deploy_button)
    dialog.close()
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.model_page, timeout=SLOW)
    assert window.model_page.model == "iris" and window.model_page.server == "local"
