"""Errors shown where they happened: one line an operator understands, the detail one click away."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget


def summary(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.replace("\n", " ")


def details(error: BaseException) -> str:
    parts = []
    log = getattr(error, "log", None) or (getattr(error, "detail", None) or {}).get("log")
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


class ErrorBanner(QWidget):
    """An inline, dismissable error line with a Details… button (hidden while there is no error)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.error: BaseException | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 6, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(self._show_details)
        close = QPushButton("Dismiss")
        close.clicked.connect(self.clear)
        row.addWidget(self.label, 1)
        row.addWidget(self.details_button)
        row.addWidget(close)
        # A QWidget subclass paints a style-sheet background only with WA_StyledBackground.
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet("ErrorBanner { background: #b3261e; } ErrorBanner QLabel { color: white; }")
        self.hide()

    def show_error(self, error: BaseException, prefix: str = "") -> None:
        self.error = error
        self.label.setText(f"{prefix}{summary(error)}")
        self.details_button.setVisible(bool(details(error)))
        self.show()

    def clear(self) -> None:
        self.error = None
        self.hide()

    def _show_details(self) -> None:
        if self.error is not None:
            box = QMessageBox(QMessageBox.Icon.Information, "Details", summary(self.error),
                              QMessageBox.StandardButton.Ok, self)
            box.setDetailedText(details(self.error))
            box.open()
