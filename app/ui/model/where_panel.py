"""Below the Releases table: "Where has this run?" for the selected release — every server where
the same bundle sha256 has run (this desktop's audit log, as `berth bundle where` shows) and what
each server holds now (current, kept, removed, or that it did not answer), asked on a worker
thread (app/promotion.where_ran) so the window never waits for a server."""
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from app.audit.cells import local_time
from app.promotion import where_ran
from app.ui.icons import icon
from app.ui.operations import BackgroundOp

COLUMNS = ["Server", "Environment", "Version", "Now", "First deployed", "Last deployed"]
NOW = {"current": "current", "kept": "kept (not current)", "removed": "removed since",
       "no answer": "did not answer", "unknown server": "server removed from Berth"}
WARN = QColor("#b06000")


class WherePanel(QWidget):
    """The selected release's sha256, the "Where has this run?" button and the answer's table."""

    def __init__(self, runner=None, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.model = ""  # the model page's model (set by the page)
        self.version, self.sha256 = "", ""
        self.task = None
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton(icon("refresh"), "Where has this run?")
        self.button.setObjectName("whereButton")
        self.button.setToolTip("Every server where this exact bundle (same sha256) has run, and what each holds now")
        self.button.clicked.connect(self.ask)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("whereTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        row = QHBoxLayout()
        row.addWidget(self.title, 1)
        row.addWidget(self.button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        self.set_release("", "")

    def set_release(self, version: str, sha256: str) -> None:
        """The selected release (or none); the last answer goes, as it was about another bundle."""
        if (version, sha256) == (self.version, self.sha256) and sha256:
            return
        self.version, self.sha256 = version, sha256
        self.table.setRowCount(0)
        self.button.setEnabled(bool(sha256) and self.runner is not None)
        self.title.setText(f"<b>Bundle</b> {sha256[:12]} ({version})" if sha256
                           else "<b>Where has this run?</b> select a release")

    def ask(self) -> None:
        if not self.sha256 or self.runner is None or (self.task is not None and not self.task.done):
            return
        sha, model = self.sha256, self.model
        self.button.setEnabled(False)
        self.title.setText(f"<b>Bundle</b> {sha[:12]} ({self.version}): asking the servers…")
        self.task = (BackgroundOp(self, f"where {sha[:12]}", lambda ctx: where_ran(ctx.workspace, sha, model))
                     .ended(lambda: self.button.setEnabled(bool(self.sha256)))
                     .only_if(lambda: self.sha256 == sha)
                     .success(self.show_rows).failure(lambda e: self.show_error(str(e))).run())

    def show_rows(self, rows: list[dict]) -> None:
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            now = NOW.get(r["now"], r["now"])
            texts = [r["server"], r["environment"] or "", r["version"], now, local_time(r["first"]), local_time(r["last"])]
            for col, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if col == 3 and r["now"] in ("no answer", "unknown server"):
                    item.setForeground(WARN)
                    item.setToolTip(r.get("detail") or "")
                self.table.setItem(i, col, item)
        self.table.resizeColumnsToContents()
        current = sum(r["now"] == "current" for r in rows)
        self.title.setText(f"<b>Bundle</b> {self.sha256[:12]} ({self.version}): on {len(rows)} server(s), "
                           f"current on {current}" if rows else
                           f"<b>Bundle</b> {self.sha256[:12]} ({self.version}): no server has run it by this "
                           "computer's audit log")

    def show_error(self, text: str) -> None:
        self.title.setText(f"<b>Bundle</b> {self.sha256[:12]}: <span style='color:#d93025'>{escape(text)}</span>")

    def rows(self) -> list[tuple[str, ...]]:
        """The table's text, row by row (what the operator reads)."""
        return [tuple(self.table.item(i, c).text() for c in range(len(COLUMNS))) for i in range(self.table.rowCount())]
