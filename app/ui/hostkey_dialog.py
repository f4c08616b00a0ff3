"""STUB (replaced by the host key dialogs)."""
from PySide6.QtWidgets import QDialog


class HostKeyDialog(QDialog):
    def __init__(self, server: str, error, parent=None):
        super().__init__(parent)
        self.server = server
        self.error = error
        self.trusted_fingerprint: str | None = None
