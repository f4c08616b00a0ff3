"""The first-run welcome: what Berth does, two ways to begin, and where its data lives."""
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QPushButton, QVBoxLayout)

from app.ui.help import places
from app.ui.icons import icon

WHAT = ("<h2>Welcome to Berth</h2>"
        "<p>Berth takes a model from a data scientist's laptop to your own servers, over SSH.</p>"
        "<ul><li>Deploy a model bundle into its own environment, and roll back with one click.</li>"
        "<li>Watch CPU, memory, latency and traffic live; run the model on a schedule; hear first when something "
        "goes wrong.</li>"
        "<li>Every change is in an audit log you can export and prove.</li></ul>")


class WelcomeDialog(QDialog):
    """Signals: try_local() — deploy the example here; add_server() — open the server dialog."""

    try_local = Signal()
    add_server = Signal()

    def __init__(self, every_start: bool, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Welcome to Berth")
        self.setObjectName("welcome")
        self.resize(720, 520)
        text = QLabel(WHAT)
        text.setWordWrap(True)
        start = QHBoxLayout()
        self.try_button = QPushButton(icon("deploy"), "Try it on this computer")
        self.try_button.setObjectName("welcomeTry")
        self.try_button.setToolTip("Deploys the iris example to the built-in `local` server and opens it: "
                                   "nothing leaves this computer")
        self.try_button.clicked.connect(lambda: self._chosen(self.try_local))
        self.add_button = QPushButton(icon("add"), "Add your first server…")
        self.add_button.setObjectName("welcomeAdd")
        self.add_button.setToolTip("Pick a host from your ~/.ssh/config or type its address")
        self.add_button.clicked.connect(lambda: self._chosen(self.add_server))
        self.try_button.setEnabled(places.example("iris") is not None)
        for b in (self.try_button, self.add_button):
            b.setMinimumHeight(40)
            start.addWidget(b)
        where = QGroupBox("Where Berth keeps things")
        form = QFormLayout(where)
        for what, path in places.where_things_live():
            value = QLabel(path)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(what, value)
        hint = QLabel("Help ▸ User guide (F1) explains every view; Help ▸ Welcome brings this window back.")
        hint.setWordWrap(True)
        self.every_start = QCheckBox("Show this window every time Berth starts")
        self.every_start.setObjectName("welcomeEveryStart")
        self.every_start.setChecked(every_start)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(start)
        layout.addWidget(where)
        layout.addWidget(hint)
        layout.addStretch(1)
        layout.addWidget(self.every_start)
        layout.addWidget(buttons)

    def _chosen(self, signal) -> None:
        self.accept()
        signal.emit()
