"""Page 1 of the deploy dialog: the bundle check, its problems shown inline (file:line, key, hint)."""
from html import escape
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QLabel, QProgressBar, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from app.ui.errors import summary
from app.ui.icons import icon

ERROR_COLOR = QColor("#b3261e")
WARNING_COLOR = QColor("#8a5a00")


class CheckPage(QWidget):
    """Shows "Checking…", then the problems of a CheckResult (errors first). No signals: the dialog
    reads `.result` and `.ok` after calling `show_result`."""

    def __init__(self, path: Path, parent=None):
        super().__init__(parent)
        self.path = Path(path)
        self.result = None
        layout = QVBoxLayout(self)
        self.title = QLabel(f"Checking <b>{self.path.name}</b>…")
        self.title.setObjectName("checkTitle")
        self.title.setWordWrap(True)
        self.where = QLabel(str(self.path))
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.where.setStyleSheet("color: palette(placeholder-text);")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate while the check runs
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.problems = QTreeWidget()
        self.problems.setObjectName("problemList")
        self.problems.setColumnCount(4)
        self.problems.setHeaderLabels(["Severity", "Where", "Key", "Problem"])
        self.problems.setRootIsDecorated(False)
        self.problems.setWordWrap(True)
        self.problems.setUniformRowHeights(False)
        self.problems.setAlternatingRowColors(True)
        self.problems.setStyleSheet("QTreeView::item { padding: 2px 0px; }")
        self.problems.currentItemChanged.connect(self._show_selected)
        self.problems.hide()
        self.detail = QLabel()  # the selected problem in full (the list may cut long hints)
        self.detail.setObjectName("problemDetail")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setStyleSheet("background: palette(alternate-base); border: 1px solid palette(mid); padding: 6px;")
        self.detail.hide()
        self.verdict = QLabel()
        self.verdict.setObjectName("checkVerdict")
        self.verdict.setWordWrap(True)
        layout.addWidget(self.title)
        layout.addWidget(self.where)
        layout.addWidget(self.busy)
        layout.addWidget(self.problems, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.verdict)
        layout.addStretch(0)

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok and self.result.manifest is not None

    def show_result(self, result) -> None:
        self.result = result
        self.busy.hide()
        errors, warnings = result.errors, result.warnings
        m = result.manifest
        name = f"{m.name} {m.version}" if m is not None else self.path.name
        if not result.problems:
            self.title.setText(f"<b>{name}</b>: no problems found")
        else:
            counts = ", ".join(c for c in (_count(len(errors), "error"), _count(len(warnings), "warning")) if c)
            self.title.setText(f"<b>{name}</b>: {counts}")
        self.problems.clear()
        for p in result.problems:
            self.problems.addTopLevelItem(_problem_item(p))
        self.problems.setVisible(bool(result.problems))
        self.detail.setVisible(bool(result.problems))
        for col, width in ((0, 80), (1, 110), (2, 150)):
            self.problems.setColumnWidth(col, width)
        if result.problems:
            # the first problem in full below, without a selection hiding its severity color
            self.problems.setCurrentItem(self.problems.topLevelItem(0), 0, QItemSelectionModel.SelectionFlag.NoUpdate)
        if errors:
            self.verdict.setText("This bundle cannot be deployed until the errors are fixed. "
                                 "Ask its author for a corrected bundle, or fix berth.toml and open it again.")
            self.verdict.setStyleSheet(f"color: {ERROR_COLOR.name()};")
        elif warnings:
            self.verdict.setText("Warnings do not block the deploy. Click Next to see what would change.")
            self.verdict.setStyleSheet("")
        else:
            self.verdict.setText("")

    def show_failure(self, error: BaseException) -> None:
        """The check itself could not run (unreadable file, …)."""
        self.result = None
        self.busy.hide()
        self.title.setText(f"Could not check <b>{self.path.name}</b>")
        self.verdict.setText(summary(error))
        self.verdict.setStyleSheet(f"color: {ERROR_COLOR.name()};")


    def _show_selected(self, item, _previous=None) -> None:
        p = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        if p is None:
            self.detail.clear()
            return
        where = f"{p.file}:{p.line}" if p.line else p.file
        parts = [f"<b>{escape(where)}</b>" + (f" — <code>{escape(p.key)}</code>" if p.key else ""),
                 escape(p.message)]
        if p.hint:
            parts.append(f"<i>What to do:</i> {escape(p.hint)}")
        self.detail.setText("<br>".join(parts))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}" if n else ""


def _problem_item(p) -> QTreeWidgetItem:
    where = f"{p.file}:{p.line}" if p.line else p.file
    text = p.message + (f"\nHint: {p.hint}" if p.hint else "")
    item = QTreeWidgetItem([p.severity, where, p.key or "", text])
    item.setIcon(0, icon("error" if p.severity == "error" else "warning"))
    item.setForeground(0, QBrush(ERROR_COLOR if p.severity == "error" else WARNING_COLOR))
    item.setToolTip(3, str(p))
    item.setData(0, Qt.ItemDataRole.UserRole, p)
    return item
