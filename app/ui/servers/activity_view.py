"""Remote activity: what Berth ran on the server shown, newest first, with how long each command
took and how it ended. Selecting one shows the command line that does the same by hand (Copy).
Read from the local database off the GUI thread, every 2 s while visible."""
from datetime import datetime

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QGroupBox, QHBoxLayout, QHeaderView, QPlainTextEdit, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout)

from app.ui.operations import BackgroundOp

COLUMNS = ("Time", "Command", "Arguments", "Took", "Result")
FAILED = QColor("#b3261e")


class ActivityView(QGroupBox):
    def __init__(self, runner, parent=None):
        super().__init__("Remote activity: what Berth ran on this server", parent)
        self.runner = runner
        self.server = ""
        self.rows: list[dict] = []
        self._task = None
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("activityTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._show_by_hand)
        self.by_hand = QPlainTextEdit()
        self.by_hand.setObjectName("byHand")
        self.by_hand.setReadOnly(True)
        self.by_hand.setMaximumHeight(90)
        self.by_hand.setPlaceholderText("Select a command to see how to run it by hand")
        self.copy_button = QPushButton("Copy command")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.by_hand.toPlainText()))
        row = QHBoxLayout()
        row.addWidget(self.by_hand, 1)
        row.addWidget(self.copy_button)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.timer = QTimer(self)
        self.timer.setInterval(2000)
        self.timer.timeout.connect(self.refresh)

    def show_server(self, name: str) -> None:
        if name != self.server:
            self.server = name
            self.rows = []
            self.table.setRowCount(0)
            self.by_hand.clear()
        self.refresh()

    def showEvent(self, event) -> None:
        self.timer.start()
        super().showEvent(event)

    def hideEvent(self, event) -> None:
        self.timer.stop()
        super().hideEvent(event)

    def refresh(self) -> None:
        if not self.server or (self._task is not None and not self._task.done):
            return
        server = self.server
        self._task = (BackgroundOp(self, "remote activity", lambda ctx: ctx.workspace.activity.list(server))
                      .success(lambda rows: self._fill(server, rows)).run())

    def _fill(self, server: str, rows: list[dict]) -> None:
        if server != self.server or rows == self.rows:
            return
        selected = self._selected_id()
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            values = (_local(r["ts"]), r["command"], r["summary"], f"{r['seconds']:.2f} s",
                      r["outcome"] + (f": {r['message']}" if r["message"] else ""))
            for j, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if j == 4 and r["outcome"] not in ("ok", "started"):
                    item.setForeground(FAILED)
                self.table.setItem(i, j, item)
            if r["id"] == selected:
                self.table.selectRow(i)

    def _selected_id(self):
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()]["id"] if rows and rows[0].row() < len(self.rows) else None

    def _show_by_hand(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        row = self.rows[rows[0].row()] if rows and rows[0].row() < len(self.rows) else None
        text = (row or {}).get("by_hand") or ""
        self.by_hand.setPlainText(text or ("(no single command: Berth sends these files itself over SFTP)"
                                           if row else ""))
        self.copy_button.setEnabled(bool(text))


def _local(ts: str) -> str:
    try:
        return datetime.fromisoformat(ts).astimezone().strftime("%H:%M:%S")
    except (TypeError, ValueError):
        return ts or ""
