"""STUB (replaced by the server dialog)."""
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog


class ServerDialog(QDialog):
    """Signals:
        saved(str name): the server was tested and saved
    """

    saved = Signal(str)

    def __init__(self, runner, existing=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Edit server" if existing else "Add server")
