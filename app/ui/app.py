"""Start the window: `berth` with no arguments."""
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def run_gui(argv: list[str] | None = None) -> int:
    from app.ui.main_window import MainWindow
    from app.ui.platform_check import plugin_problem, uses_xcb, xcb_plugin
    from app.ui.theme import apply_theme

    problem = plugin_problem(xcb_plugin()) if uses_xcb() and QApplication.instance() is None else None
    if problem:
        print(f"berth: {problem}", file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("Berth")
    app.setOrganizationName("Berth")
    apply_theme(app)
    if not _data_folder_usable():
        return 1
    window = MainWindow()
    window.show()
    QTimer.singleShot(0, window.start_monitoring)  # after the first paint
    QTimer.singleShot(0, window.help.first_run)  # the welcome, the first time
    return app.exec()


def _data_folder_usable() -> bool:
    """A data folder Berth cannot use or trust is said in a window (a menu start shows no stderr), not
    as a traceback from the first view that reads the database."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QMessageBox

    from app.errors import BerthError
    from app.store import paths

    try:
        paths.berth_home()
    except BerthError as e:
        print(f"berth: {e}", file=sys.stderr)
        if QGuiApplication.platformName() != "offscreen":
            QMessageBox.critical(None, "Berth cannot start", str(e))
        return False
    return True
