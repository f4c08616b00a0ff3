"""Driving the console's dialogs in tests the way an operator does (shared by the test_ui_* files)."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLineEdit, QSpinBox

from app.ui.servers.hostkey_dialog import HostKeyDialog

SLOW = 30000  # ms: a first connection uploads the agent


def w(dialog, cls, name):
    widget = dialog.findChild(cls, name)
    assert widget is not None, name
    return widget


def fill(dialog, srv, name="box", auth="key", key=None, password="", passphrase="", root=None):
    w(dialog, QLineEdit, "nameEdit").setText(name)
    w(dialog, QLineEdit, "hostEdit").setText(srv.host)
    w(dialog, QSpinBox, "portSpin").setValue(srv.port)
    w(dialog, QLineEdit, "userEdit").setText(srv.user)
    combo = w(dialog, QComboBox, "authCombo")
    combo.setCurrentIndex(combo.findData(auth))
    w(dialog, QLineEdit, "keyEdit").setText(str(key or srv.key_path))
    w(dialog, QLineEdit, "passphraseEdit").setText(passphrase)
    w(dialog, QLineEdit, "passwordEdit").setText(password)
    w(dialog, QLineEdit, "rootEdit").setText(root or str(srv.folder / f"root {name}"))
    w(dialog, QComboBox, "envCombo").setEditText("staging")


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def wait_host_key_dialog(qtbot, dialog) -> HostKeyDialog:
    qtbot.waitUntil(lambda: dialog.host_key_dialog is not None and dialog.host_key_dialog.isVisible(), timeout=SLOW)
    return dialog.host_key_dialog


def reach_confirmation(qtbot, dialog) -> None:
    """Wait for the check; click Next if the check page stays (warnings), then wait for the plan."""
    qtbot.waitUntil(lambda: dialog.check is not None, timeout=60000)
    if dialog.stack.currentWidget() is dialog.check_page:
        assert dialog.next_button.isEnabled(), [str(p) for p in dialog.check.problems]
        qtbot.mouseClick(dialog.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=30000)
    assert dialog.stack.currentWidget() is dialog.confirm_page and dialog.deploy_button.isEnabled()
