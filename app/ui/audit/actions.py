"""The Audit view's "Verify" and "Export…" buttons and the progress bar they share.

Both walk the whole log (a million events take seconds), so both run on the task runner and
report progress through it; the window stays live and the buttons are disabled until the answer."""
import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QProgressBar, QPushButton, QWidget

from app.audit.window import position_of

from app.ui.operations import BackgroundOp

FORMATS = (("csv", "CSV (*.csv)"), ("json", "JSON (*.json)"), ("html", "HTML report (*.html)"),
           ("pdf", "PDF report (*.pdf)"))


def export_format(path: str, chosen_filter: str) -> tuple[str, str]:
    """(path, format): the file's extension decides; without one, the chosen filter does (and adds it)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    known = [fmt for fmt, _ in FORMATS]
    if suffix in known:
        return path, suffix
    fmt = next((f for f, label in FORMATS if label == chosen_filter), "csv")
    return f"{path}.{fmt}", fmt


def _throttled(report, every: float = 0.1):
    """progress(done, total) at most every `every` seconds (and at the end): a million-row export
    must not queue a million signals."""
    last = [0.0]

    def progress(done, total=None):
        now = time.monotonic()
        if now - last[0] >= every or (total and done >= total):
            last[0] = now
            report((done, total))
    return progress


def verify_work(flt):
    def work(ctx):
        # the chain and its anchor beside the database (the server journals: `berth audit verify --servers`)
        verdict = ctx.workspace.verify_audit(progress=_throttled(lambda v: ctx.task.progress(v)))
        bad = verdict.first_bad or {}
        position = position_of(ctx.workspace.db, flt, bad["id"]) if bad.get("id") else -1
        return verdict, position
    return work


def export_work(flt, fmt: str, path: str):
    def work(ctx):
        from app.audit.actor import actor_label, local_actor
        from app.audit.export import export_events

        writer = None
        if fmt == "pdf":
            from app.ui.audit.report_pdf import write_pdf as writer
        return export_events(ctx.workspace.db, flt, fmt, path, exported_by=actor_label(local_actor()),
                             pdf_writer=writer, progress=_throttled(ctx.task.progress))
    return work


class AuditActions(QWidget):
    """`current_filter()` is asked when a button is clicked.

    Signals:
        verified(object verdict, int row): row of the first bad event in that filter, or -1
        exported(object result): the ExportResult of a finished export
        failed(str prefix, object error): a verify or export failed
    """

    verified = Signal(object, int)
    exported = Signal(object)
    failed = Signal(str, object)

    def __init__(self, runner, current_filter, parent=None):
        super().__init__(parent)
        self.runner = runner
        self.current_filter = current_filter
        self.task = None
        self.verified_filter = None  # the filter the last Verify located the bad event in
        self.last_folder = str(Path.home())
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.progress = QProgressBar()
        self.progress.setObjectName("auditProgress")
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.verify_button = QPushButton("Verify")
        self.verify_button.setObjectName("verifyButton")
        self.verify_button.setToolTip("Check the audit log's hash chain and its anchor: was any event changed, "
                                      "removed or inserted, or the log replaced?")
        self.verify_button.clicked.connect(self.verify)
        self.export_button = QPushButton("Export…")
        self.export_button.setObjectName("exportButton")
        self.export_button.setToolTip("Write the events the filters show to CSV, JSON, HTML or PDF")
        self.export_button.clicked.connect(self.export)
        row.addWidget(self.progress)
        row.addWidget(self.verify_button)
        row.addWidget(self.export_button)

    @property
    def busy(self) -> bool:
        return self.task is not None

    def verify(self) -> None:
        if self.busy:
            return
        self._start("Verifying…", 0)
        self.verified_filter = flt = self.current_filter()
        self.task = (BackgroundOp(self, "verify audit chain", verify_work(flt))
                     .progress(lambda v: self.progress.setFormat(f"Verifying… {v[0]:,} events"))
                     .success(lambda answer: self._done(self.verified.emit, *answer))
                     .failure(lambda e: self._done(self.failed.emit, "Cannot verify the audit log: ", e)).run())

    def export(self) -> None:
        if self.busy:
            return
        default = str(Path(self.last_folder) / "berth-audit.csv")
        path, chosen = QFileDialog.getSaveFileName(self, "Export audit log", default,
                                                   ";;".join(label for _, label in FORMATS))
        if not path:
            return
        path, fmt = export_format(path, chosen)
        self.last_folder = str(Path(path).parent)
        self._start(f"Exporting {fmt.upper()}…", 0)
        self.task = (BackgroundOp(self, f"export audit log to {path}", export_work(self.current_filter(), fmt, path))
                     .progress(self._export_progress)
                     .success(lambda result: self._done(self.exported.emit, result))
                     .failure(lambda e: self._done(self.failed.emit, "Export failed: ", e)).run())

    def _export_progress(self, value) -> None:
        done, total = value
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
            self.progress.setFormat(f"Exporting… {done:,} / {total:,}")

    def _start(self, text: str, maximum: int) -> None:
        self.verify_button.setEnabled(False)
        self.export_button.setEnabled(False)
        self.progress.setRange(0, maximum)  # 0..0: busy
        self.progress.setFormat(text)
        self.progress.show()

    def _done(self, emit, *args) -> None:
        self.task = None
        self.progress.hide()
        self.verify_button.setEnabled(True)
        self.export_button.setEnabled(True)
        emit(*args)
