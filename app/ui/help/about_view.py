"""About Berth: its version, what it runs on, and the licences of the software it brings."""
import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QVBoxLayout)

from app import __version__
from app.ui.help.licences import bundled


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
        self.table = QTableWidget(len(rows), 3)
        self.table.setObjectName("licenceTable")
        self.table.setHorizontalHeaderLabels(["Software", "Version", "Licence"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
