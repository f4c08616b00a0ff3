"""Icons from resources/icons (our own SVGs, see resources/icons/LICENSE)."""
from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

ICONS = Path(__file__).resolve().parent.parent.parent / "resources" / "icons"


@cache
def icon(name: str) -> QIcon:
    path = ICONS / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
