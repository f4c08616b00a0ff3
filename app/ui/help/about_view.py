"""About Berth: its version, what it runs on, and the licences of the software it brings."""
import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout

from app import __version__
from app.ui.help.licences import bundled
from app.ui.help.table import text_table


class AboutDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("About Berth")
        self.resize(640, 560)
        head = QLabel(f"<h2>Berth {__version__}</h2><p>Deploy, serve, watch and roll back data-science models on "
                      "your own servers, over SSH.</p>"
                      f"<p>Python {platform.python_version()} · Qt {qVersion()} · PySide6 {pyside_version} · "
                      f"{platform.system()} {platform.machine()}</p>"
                      "<p><b>Software Berth brings with it</b>, each under its own licence (Qt itself comes inside "
                      "PySide6, under the LGPL 3: you may replace it with your own build of the same version):</p>")
        head.setObjectName("aboutHead")
        head.setWordWrap(True)
        rows = bundled()
        self.table = text_table("licenceTable", ["Software", "Version", "Licence"], rows, stretch=2)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
