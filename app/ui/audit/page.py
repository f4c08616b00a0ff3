"""The Audit view: every event newest first, filtered (server, model, action, actor, outcome, text,
time range), verified against its hash chain and exported, with a million events as smooth as ten.

All reads run off the GUI thread through the task runner. A refresh reads the total and the first
page at once (milliseconds); for a large log the filter's seq list and the filter choices follow
from a second task (app/audit/window.py); the table (table_model.py) fetches the pages it paints."""
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QHBoxLayout, QLabel, QTableView, QVBoxLayout, QWidget

from app.audit.query import AuditFilter
from app.audit.window import read_rest, read_snapshot, rows_at, rows_by_seq

from app.ui.audit.actions import AuditActions
from app.ui.audit.filters import AuditFilterBar
from app.ui.audit.table_model import COLUMNS, PAGE, AuditModel, local_time
from app.ui.errors import ErrorBanner, StatusBanner
from app.ui.operations import BackgroundOp

__all__ = ["AuditPage", "AuditModel", "COLUMNS", "PAGE", "local_time"]
SMALL = 50000  # up to this many events, the first read also reads the seq list (~0.1 s)
WIDTHS = (17, 13, 8, 7, 7, 8, 10, 12, 12, 24)  # characters per column (Origin takes the rest)


class AuditPage(QWidget):
    """The audit log with its filters. `refresh()` re-reads it; `focus_filter()` puts the cursor in
    the text filter (the window's Ctrl+F)."""

    def __init__(self, runner, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.tasks: dict[str, object] = {}  # the latest of each kind; released when it answers
        self.snapshot = None  # the last read (app.audit.window.Snapshot)
        self.generation = 0
        layout = QVBoxLayout(self)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("<b>Audit log</b>"))
        bar.addStretch(1)
        self.count_label = QLabel()
        self.count_label.setObjectName("countLabel")
        bar.addWidget(self.count_label)
        layout.addLayout(bar)
        self.filters = AuditFilterBar()
        self.filters.bottom_row.addStretch(1)
        self.actions = AuditActions(runner, self.current_filter)
        self.filters.bottom_row.addWidget(self.actions)
        layout.addWidget(self.filters)
        # the old names, which other code and tests use
        self.text_edit = self.filters.text_edit
        self.server_combo, self.model_combo = self.filters.server_combo, self.filters.model_combo
        self.action_combo = self.filters.action_combo

        self.banner = ErrorBanner()  # reading the log failed
        layout.addWidget(self.banner)
        self.status = StatusBanner()  # verify and export results
        self.status.setObjectName("auditStatus")
        layout.addWidget(self.status)

        self.model = AuditModel(self)
        self.model.fetcher = self._fetch_pages
        self.table = QTableView()
        self.table.setObjectName("auditTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vertical = self.table.verticalHeader()
        vertical.hide()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # a million rows: never measured
        vertical.setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        digit = self.table.fontMetrics().horizontalAdvance("0")
        for col, chars in enumerate(WIDTHS):
            self.table.setColumnWidth(col, digit * chars + 12)
        layout.addWidget(self.table, 1)

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(250)
        self.debounce.timeout.connect(self.refresh)
        self.filters.edited.connect(self.debounce.start)
        self.filters.changed.connect(self.refresh)
        self.actions.verified.connect(self._verified)
        self.actions.exported.connect(self._exported)
        self.actions.failed.connect(self._action_failed)

    # -- public -------------------------------------------------------------------------------
    def current_filter(self) -> AuditFilter:
        return self.filters.current_filter()

    def refresh(self) -> None:
        """Re-read the log with the current filters (off the GUI thread). The same filter again keeps
        the selection and the scroll position; new events appear on top."""
        self.debounce.stop()
        self.filters.show_preset_range()
        self.generation += 1
        generation, flt = self.generation, self.current_filter()
        previous = self.snapshot

        def work(ctx):
            return read_snapshot(ctx.workspace.db, flt, PAGE, previous, SMALL)

        self.tasks["read"] = (
            BackgroundOp(self, "read audit log", work)
            .only_if(lambda: generation == self.generation)  # else a newer read is on its way
            .success(self._loaded).failure(lambda _e: self.tasks.pop("read", None))
            .with_banner(self.banner, "Cannot read the audit log: ").run())

    def focus_filter(self) -> None:
        self.text_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.text_edit.selectAll()

    def select_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            index = self.model.index(row, 0)
            self.table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    # -- loading ------------------------------------------------------------------------------
    def _loaded(self, snap) -> None:
        self.tasks.pop("read", None)
        self.banner.clear()
        if snap.choices is not None:
            self.filters.fill_choices(snap.choices)
        previous, self.snapshot = self.snapshot, snap
        if previous is not None and snap.added >= 0:
            bar = self.table.verticalScrollBar()
            at_top = bar.value() == 0
            self.model.prepend(snap.added, snap.total, snap.rows, snap.seqs)
            if at_top:
                bar.setValue(0)  # the newest stay in view
        else:
            self.model.reset(snap.total, snap.rows, snap.seqs)
        if snap.seqs is None or snap.choices is None:
            self._read_rest(snap)
        self._show_count()

    def _read_rest(self, snap) -> None:
        """The seq list and the choices of a large log: one task, so the pool's other thread stays
        free for the pages the table paints meanwhile; one at a time for a filter (refreshes come in
        bursts, and each list takes seconds with a million events)."""
        running = self.tasks.get("rest")
        if running is not None and running.filter == snap.filter:
            return  # its answer serves this snapshot too
        task = (BackgroundOp(self, "read audit order", lambda ctx: read_rest(ctx.workspace.db, snap))
                .success(lambda rest: self._rest_loaded(task, *rest))  # `task` is set before any answer
                .failure(lambda e: self._rest_failed(task, e)).run())
        task.filter = snap.filter
        self.tasks["rest"] = task

    def _rest_loaded(self, task, seqs, choices) -> None:
        if self.tasks.get("rest") is task:
            del self.tasks["rest"]
        snap = self.snapshot
        if snap is None or snap.filter != task.filter:
            return  # the filters changed meanwhile
        if choices is not None and snap.choices is None:
            snap.choices = choices
            self.filters.fill_choices(choices)
        if seqs is not None and snap.seqs is None:
            if self.model.set_seqs(seqs):
                snap.seqs = seqs
            else:
                self.refresh()  # events arrived between the count and the list: read again

    def _rest_failed(self, task, error) -> None:
        if self.tasks.get("rest") is task:
            del self.tasks["rest"]
            self.banner.show_error(error, "Cannot read the audit log: ")

    def _fetch_pages(self, model_generation: int, pages: list[int]) -> None:
        seqs, total, flt = self.model.seqs, self.model.total, self.snapshot.filter
        size = self.model.page_size

        def work(ctx):
            db = ctx.workspace.db
            if seqs is not None:
                return {p: rows_by_seq(db, seqs[p * size:(p + 1) * size]) for p in pages}
            return {p: rows_at(db, flt, p * size, size, total) for p in pages}

        (BackgroundOp(self, "read audit page", work)
         .success(lambda rows: self.model.put_pages(model_generation, rows))
         .failure(lambda _e: self.model.fetch_failed(model_generation))
         .with_banner(self.banner, "Cannot read the audit log: ").run())

    def _show_count(self) -> None:
        total = self.model.total
        self.count_label.setText(f"{total:,} event{'' if total == 1 else 's'}")

    # -- verify and export --------------------------------------------------------------------
    def _verified(self, verdict, row: int) -> None:
        said = " · ".join(getattr(verdict, "lines", None) or [verdict.message])  # chain, then anchor
        if verdict.ok:
            self.status.show_message("ok", f"✔ {said}")
            return
        text = f"✘ {said}"
        if self.actions.verified_filter != self.current_filter():  # the filters changed meanwhile
            row = self.model.row_of_seq((verdict.first_bad or {}).get("seq"))
        if row >= 0:
            seq = (verdict.first_bad or {}).get("seq")
            self.status.show_message("error", text, "Show event", lambda: self._show_event(seq, row))
            self.select_row(row)
        else:
            hidden = " (not among the events the filters show)" if (verdict.first_bad or {}).get("id") else ""
            self.status.show_message("error", text + hidden)

    def _show_event(self, seq, row: int) -> None:
        """Back to the bad event, even after new events pushed it down."""
        found = self.model.row_of_seq(seq)
        self.select_row(found if found >= 0 else row)

    def _action_failed(self, prefix: str, error) -> None:
        self.status.show_message("error", f"{prefix}{error}")
        self.refresh()  # a failed export is an audit event too

    def _exported(self, result) -> None:
        verdict = getattr(result, "verdict", None)
        chain = f" · {verdict.message}" if verdict is not None else " · a CSV carries no chain check: use Verify"
        count = result.count
        text = f"Exported {count:,} event{'' if count == 1 else 's'} as {str(result.format).upper()} to {result.path}"
        folder = QUrl.fromLocalFile(str(Path(result.path).parent))
        self.status.show_message("ok" if verdict is None or verdict.ok else "error", text + chain, "Open folder",
                                 lambda: QDesktopServices.openUrl(folder))
        self.refresh()  # the export is itself an event (report.export)
