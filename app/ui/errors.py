"""Errors shown where they happened: one line an operator understands, the detail one click away."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from app.errors import error_log, one_line


def summary(error: BaseException) -> str:
    return one_line(error)


def details(error: BaseException) -> str:
    parts = []
    log = error_log(error)
    if log:
        parts.append("Server log:\n" + "\n".join(log))
    trace = getattr(error, "trace", "")
    if trace:
        parts.append(trace)
    return "\n\n".join(parts)


def show_error(parent, title: str, error: BaseException) -> None:
    box = QMessageBox(QMessageBox.Icon.Warning, title, summary(error), QMessageBox.StandardButton.Ok, parent)
    if details(error):
        box.setDetailedText(details(error))
    box.open()


class StatusBanner(QWidget):
    """A result line: green when all is well ("ok"), red when not ("error"), plain while something
    is under way ("info"), with one optional action button. `dismissable=False` leaves out the
    Dismiss button where the line is the only answer a dialog gives (the server dialog)."""

    COLORS = {"ok": "#1e6b34", "error": "#b3261e", "info": ""}

    def __init__(self, parent=None, dismissable: bool = True):
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
        close.setVisible(dismissable)
        for button in (self.action_button, close):
            button.setAutoDefault(False)  # in a dialog, Enter stays with the dialog's default button
        row.addWidget(self.label, 1)
        row.addWidget(self.action_button)
        row.addWidget(close)
        # A QWidget subclass paints a style-sheet background only with WA_StyledBackground.
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.hide()

    def show_message(self, kind: str, text: str, action: str = "", on_action=None) -> None:
        self.kind = kind
        self.label.setText(text)
        name, color = type(self).__name__, self.COLORS[kind]
        self.setStyleSheet(f"{name} {{ background: {color}; }} {name} QLabel {{ color: white; }}" if color else "")
        self._action = on_action
        self.action_button.setText(action)
        self.action_button.setVisible(bool(action and on_action))
        self.show()

    def clear(self) -> None:
        self.kind = ""
        self._action = None
        self.hide()


class ErrorBanner(StatusBanner):
    """An inline, dismissable error line with a Details… button when there are details."""

    def __init__(self, parent=None, dismissable: bool = True):
        super().__init__(parent, dismissable)
        self.error: BaseException | None = None

    def show_error(self, error: BaseException, prefix: str = "") -> None:
        self.error = error
        self.show_message("error", f"{prefix}{summary(error)}", "Details…",
                          self._show_details if details(error) else None)

    def clear(self) -> None:
        self.error = None
        super().clear()

    def _show_details(self) -> None:
        if self.error is not None:
            box = QMessageBox(QMessageBox.Icon.Information, "Details", summary(self.error),
                              QMessageBox.StandardButton.Ok, self)
            box.setDetailedText(details(self.error))
            box.open()
