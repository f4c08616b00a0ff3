"""The palette follows BERTH_THEME (and otherwise the system scheme)."""
import pytest
from PySide6.QtGui import QPalette

from app.ui.theme import apply_theme


@pytest.fixture
def themed(qapp):
    style, palette = qapp.style().name(), qapp.palette()
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)


def window_lightness(app) -> int:
    return app.palette().color(QPalette.ColorRole.Window).lightness()


def test_forced_dark(themed, monkeypatch):
    monkeypatch.setenv("BERTH_THEME", "dark")
    assert apply_theme(themed) == "dark"
    assert themed.style().name().lower() == "fusion"
    assert window_lightness(themed) < 80
    assert themed.palette().color(QPalette.ColorRole.WindowText).lightness() > 180


def test_forced_light(themed, monkeypatch):
    monkeypatch.setenv("BERTH_THEME", "light")
    assert apply_theme(themed) == "light"
    assert window_lightness(themed) > 200
    assert themed.palette().color(QPalette.ColorRole.WindowText).lightness() < 80


def test_no_override_follows_the_system(themed, monkeypatch):
    from PySide6.QtCore import Qt
    monkeypatch.delenv("BERTH_THEME", raising=False)
    dark = themed.styleHints().colorScheme() == Qt.ColorScheme.Dark
    assert apply_theme(themed) == ("dark" if dark else "light")
    assert (window_lightness(themed) < 80) == dark


def test_follows_a_scheme_change(themed, monkeypatch):
    from PySide6.QtCore import Qt
    monkeypatch.delenv("BERTH_THEME", raising=False)
    apply_theme(themed)
    hints = themed.styleHints()
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)  # what the platform sends when the user switches
    assert window_lightness(themed) < 80
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert window_lightness(themed) > 200
