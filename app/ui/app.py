"""Start the window: `berth` with no arguments."""
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def run_gui(argv: list[str] | None = None) -> int:
    from app.ui.main_window import MainWindow
    from app.ui.theme import apply_theme

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("Berth")
    app.setOrganizationName("Berth")
    apply_theme(app)
    window = MainWindow()
    window.show()
    QTimer.singleShot(0, window.start_monitoring)  # after the first paint
    QTimer.singleShot(0, window.help.first_run)  # the welcome, the first time
    return app.exec()
