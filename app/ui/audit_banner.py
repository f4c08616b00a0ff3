"""A result line above the audit table: green when all is well (chain intact, export written), red
when it is not (chain broken, export failed), with one optional action button ("Show event")."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

COLORS = {"ok": "#1e6b34", "error": "#b3261e"}


class StatusBanner(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.kind = ""
        self._action = None
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 6, 4)
        self.label = QLabel()
        self.label.setObjectName("bannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QPushButton()
        self.action_button.setObjectName("bannerAction")
        self.action_button.clicked.connect(lambda: self._action and self._action())
        close = QPushButton("Dismiss")
        close.clicked.connect(self.clear)
        row.addWidget(self.label, 1)
        row.addWidget(self.action_button)
        row.addWidget(close)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.hide()

    def show_message(self, kind: str, text: str, action: str = "", on_action=None) -> None:
        """kind: "ok" (green) or "error" (red)."""
        self.kind = kind
        self.label.setText(text)
        self.setStyleSheet(f"StatusBanner {{ background: {COLORS[kind]}; }} StatusBanner QLabel {{ color: white; }}")
        self._action = on_action
        self.action_button.setText(action)
        self.action_button.setVisible(bool(action and on_action))
        self.show()

    def clear(self) -> None:
        self.kind = ""
        self._action = None
        self.hide()
