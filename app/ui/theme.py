"""Light or dark palette: Fusion style, following the system colour scheme (and its changes).
BERTH_THEME=dark|light forces one (handy for screenshots)."""
import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

R = QPalette.ColorRole


def dark_palette() -> QPalette:
    p = QPalette()
    for role, color in ((R.Window, "#2b2b2b"), (R.WindowText, "#e8eaed"), (R.Base, "#1f1f1f"),
                        (R.AlternateBase, "#262626"), (R.ToolTipBase, "#3c4043"), (R.ToolTipText, "#e8eaed"),
                        (R.PlaceholderText, "#9aa0a6"), (R.Text, "#e8eaed"), (R.Button, "#353535"),
                        (R.ButtonText, "#e8eaed"), (R.BrightText, "#ff6e6e"), (R.Light, "#4a4a4a"),
                        (R.Midlight, "#404040"), (R.Mid, "#303030"), (R.Dark, "#1a1a1a"), (R.Shadow, "#000000"),
                        (R.Highlight, "#1a73e8"), (R.HighlightedText, "#ffffff"), (R.Link, "#8ab4f8"),
                        (R.LinkVisited, "#c58af9")):
        p.setColor(role, QColor(color))
    for role in (R.WindowText, R.Text, R.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7f7f7f"))
    p.setColor(QPalette.ColorGroup.Disabled, R.Highlight, QColor("#505050"))
    return p


def wants_dark(scheme: Qt.ColorScheme | None = None) -> bool:
    forced = os.environ.get("BERTH_THEME", "").strip().lower()
    if forced in ("dark", "light"):
        return forced == "dark"
    return (scheme or QGuiApplication.styleHints().colorScheme()) == Qt.ColorScheme.Dark


def apply_theme(app: QApplication, scheme: Qt.ColorScheme | None = None) -> str:
    """Set Fusion and the palette for `scheme` (default: the system's); returns "dark" or "light"."""
    app.setStyle("Fusion")
    dark = wants_dark(scheme)
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    if not app.property("berthThemeFollows"):  # connect once, however often this is called
        app.setProperty("berthThemeFollows", True)
        app.styleHints().colorSchemeChanged.connect(lambda scheme: apply_theme(app, scheme))
    return "dark" if dark else "light"
