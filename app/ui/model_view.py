"""STUB (replaced by the model view): name, version, state, releases, predict, logs."""
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class ModelPage(QWidget):
    """Signals:
        changed(str server): a rollback / make current / start / stop finished (ok or not)
    """

    changed = Signal(str)

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.title = QLabel()
        QVBoxLayout(self).addWidget(self.title)

    def show_model(self, server: str, status: dict) -> None:
        self.title.setText(f"{status['model']} {status['version']} on {server}: {status['state']}")
