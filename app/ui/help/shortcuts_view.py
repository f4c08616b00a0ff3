"""Keyboard shortcuts, read from the window's own menus: the list cannot drift from what the keys do."""
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QVBoxLayout

from app.ui.help.table import text_table


def shortcut_rows(window) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every menu action that has a key, in menu order."""
    rows = []
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        for action in menu.actions():
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
            if keys and not action.isSeparator():
                rows.append((menu.title().replace("&", ""), action.text().replace("&", "").rstrip("…"),
                             ", ".join(keys)))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 460)
        rows = shortcut_rows(window)
        self.table = text_table("shortcutTable", ["Menu", "Action", "Keys"], rows, stretch=1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
