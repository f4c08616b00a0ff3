"""The tables of the Jobs tab: a model's jobs (what needs a look, FAILING or LATE, stands out), the
selected job's runs, and a preview of its output's rows. One small table model for all three: a
list of rows and, per column, a header and how a row's cell is written."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QTableView

from app.ui.model.releases_view import local_time, number

Index = QModelIndex | QPersistentModelIndex
ROLE_ROW = Qt.ItemDataRole.UserRole + 1
FAILING, LATE = "#b3261e", "#b06000"
SCHEDULE_RE = re.compile(r"(?:every (?P<every>\S+)|cron '(?P<cron>.*)')(?: \((?P<tz>[^()]+)\))?")


def job_state(job: dict) -> str:
    """What the jobs table says of a job: what needs a look first."""
    if job.get("failing"):
        return "FAILING"
    if job.get("late"):
        return "LATE"
    if job.get("paused"):
        return "paused"
    return job.get("last_state") or "not run yet"


def schedule_fields(described: str) -> tuple[str, str, str]:
    """('every' | 'cron', expression, zone) of a schedule as job_list describes it
    ("every 10m", "cron '30 2 * * *' (Europe/Vienna)"); ('every', '', 'UTC') for anything else."""
    m = SCHEDULE_RE.fullmatch(described or "")
    if not m:
        return "every", "", "UTC"
    kind = "every" if m.group("every") is not None else "cron"
    return kind, m.group(kind), m.group("tz") or "UTC"


def duration(run: dict) -> str:
    try:
        start = datetime.fromisoformat(run["started"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(run["ended"].replace("Z", "+00:00"))
    except (KeyError, AttributeError, TypeError, ValueError):
        return "running" if run.get("state") == "running" else ""
    s = int(max(0.0, (end - start).total_seconds()))  # the agent's times are whole seconds
    return "< 1 s" if s < 1 else f"{s} s" if s < 60 else f"{s // 60} min {s % 60} s"


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return number(value) if isinstance(value, float) else str(value)


Column = tuple[str, Callable[[dict], str]]
JOB_COLUMNS: list[Column] = [
    ("Job", lambda j: j["name"]),
    ("Schedule", lambda j: j.get("schedule") or ""),
    ("Version", lambda j: j.get("version") or "current"),
    ("Next run", lambda j: local_time(j.get("next_run")) if j.get("next_run") else "—"),
    ("Last run", lambda j: local_time(j.get("last_run")) if j.get("last_run") else "—"),
    ("State", job_state),
    ("Output", lambda j: f"{(j.get('output') or {}).get('url', '')} → {(j.get('output') or {}).get('table', '')}"),
]
RUN_COLUMNS: list[Column] = [
    ("Started", lambda r: local_time(r.get("started"))),
    ("Duration", duration),
    ("State", lambda r: r.get("state") or ""),
    ("Rows in", lambda r: str(r.get("rows_in") or 0)),
    ("Rows out", lambda r: str(r.get("rows_out") or 0)),
    ("Errors", lambda r: str(r.get("errors") or 0)),
    ("Late", lambda r: "late" if r.get("late") else ""),
    ("Version", lambda r: r.get("version") or ""),
    ("Detail", lambda r: r.get("detail") or ""),
]


def _job_color(job: dict, col: int) -> str | None:
    state = job_state(job)
    if JOB_COLUMNS[col][0] == "State" and state in ("FAILING", "LATE"):
        return FAILING if state == "FAILING" else LATE
    return None


def _run_color(run: dict, col: int) -> str | None:
    name = RUN_COLUMNS[col][0]
    if name == "State" and run.get("state") == "failed" or name == "Errors" and run.get("errors"):
        return FAILING
    if name == "Late" and run.get("late"):
        return LATE
    return None


class RowsModel(QAbstractTableModel):
    def __init__(self, columns: list[Column], color: Callable[[dict, int], str | None] | None = None, parent=None):
        super().__init__(parent)
        self.columns, self.color = columns, color
        self.rows: list[dict] = []

    def set_rows(self, rows: list[dict], columns: list[Column] | None = None) -> bool:
        """False when nothing changed: no reset, so the selection, scrolling and widths stay (polled)."""
        if rows == self.rows and (columns is None or [c[0] for c in columns] == [c[0] for c in self.columns]):
            return False
        self.beginResetModel()
        self.rows = list(rows)
        if columns is not None:
            self.columns = columns
        self.endResetModel()
        return True

    def text(self, row: int, header: str) -> str:
        col = [c[0] for c in self.columns].index(header)
        return self.columns[col][1](self.rows[row])

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.columns):
            return self.columns[section][0]
        return None

    def data(self, index: Index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows) or index.column() >= len(self.columns):
            return None
        row, col = self.rows[index.row()], index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.columns[col][1](row)
        if role == ROLE_ROW:
            return row
        color = self.color(row, col) if self.color is not None else None
        if role == Qt.ItemDataRole.ForegroundRole and color:
            return QColor(color)
        if role == Qt.ItemDataRole.FontRole and color:
            font = QFont()
            font.setBold(True)
            return font
        return None


def jobs_model(parent=None) -> RowsModel:
    return RowsModel(JOB_COLUMNS, _job_color, parent)


def runs_model(parent=None) -> RowsModel:
    return RowsModel(RUN_COLUMNS, _run_color, parent)


def preview_model(parent=None) -> RowsModel:
    return RowsModel([], None, parent)


FIRST = ("input_ref", "reason", "raw")  # what a preview is read for comes first; Berth's own columns last
LAST = ("time", "run_id", "model_version")


def set_preview(model: RowsModel, part: dict) -> None:
    """Rows of job_preview ({columns, rows}) into a preview model: the input's reference first, then
    the model's output (or an error's reason and raw input), then when, which run and version."""
    names = list(part.get("columns") or [])
    order = sorted(range(len(names)), key=lambda i: (0 if names[i] in FIRST else 2 if names[i] in LAST else 1,
                                                     FIRST.index(names[i]) if names[i] in FIRST else
                                                     LAST.index(names[i]) if names[i] in LAST else i))
    columns = [(names[i], lambda r, i=i: cell(r["cells"][i] if i < len(r["cells"]) else None)) for i in order]
    model.set_rows([{"cells": list(r)} for r in part.get("rows") or []], columns)


def table(model: RowsModel, name: str) -> QTableView:
    view = QTableView()
    view.setObjectName(name)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.verticalHeader().hide()
    view.horizontalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    view.horizontalHeader().setStretchLastSection(True)
    return view
