"""STUB (replaced by the audit view)."""
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class AuditPage(QWidget):
    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        QVBoxLayout(self).addWidget(QLabel("Audit log"))

    def refresh(self) -> None:
        pass

    def focus_filter(self) -> None:
        pass
