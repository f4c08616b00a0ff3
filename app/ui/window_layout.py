"""The main window's size, docks and splitter, kept between starts (ui.ini in Berth's home).

The splitter is put back when the window is first shown, not when it is built: before that the
window has not its restored size yet (a platform may clamp the geometry to its screen until the
window is mapped), and a state restored into a narrower splitter gives the room to the wrong side."""
from PySide6.QtCore import QObject, QEvent

from app.ui.settings import settings


class _RestoreSplitterOnShow(QObject):
    def __init__(self, window, state):
        super().__init__(window)
        self.state = state

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Show and self.state is not None:
            obj.splitter.restoreState(self.state)
            self.state = None
        return False


def restore(window) -> None:
    s = settings()
    if s.value("window/geometry"):
        window.restoreGeometry(s.value("window/geometry"))
    else:
        window.resize(1280, 800)
        window.splitter.setSizes([360, 920])  # room for a name and "not answering since HH:MM:SS"
    if s.value("window/state"):
        window.restoreState(s.value("window/state"))
    if s.value("window/splitter"):
        state = s.value("window/splitter")
        window.splitter.restoreState(state)
        window.installEventFilter(_RestoreSplitterOnShow(window, state))


def save(window) -> None:
    s = settings()
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/state", window.saveState())
    s.setValue("window/splitter", window.splitter.saveState())
    s.sync()
