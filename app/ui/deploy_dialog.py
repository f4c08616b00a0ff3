"""STUB (replaced by the deploy dialog)."""
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog


class DeployDialog(QDialog):
    """Signals:
        changed(str server): the deploy finished (ok, failed or cancelled)
    """

    changed = Signal(str)

    def __init__(self, runner, server: str, path: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Deploy {Path(path).name} to {server}")
