"""Window layout and small preferences, kept in Berth's own folder (so tests never share them)."""
from PySide6.QtCore import QSettings

from app.store import paths


def settings() -> QSettings:
    return QSettings(str(paths.berth_home() / "ui.ini"), QSettings.Format.IniFormat)
