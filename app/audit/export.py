"""`berth audit export` and the console's Export…: the filtered log as CSV, JSON, HTML or PDF.

Everything is read inside one read transaction, so the verdict, the count, the report and the
rows all see the same log even while others append. The file is written beside the target under a
temporary name and renamed at the end: a failed export never leaves half a file. Each export, or
failed export, is itself an audit event (`report.export`). The PDF is drawn by a writer passed in
(app/ui/report_pdf.py: Qt's PDF writer), keeping this module Qt-free."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass
from operator import itemgetter
from pathlib import Path
from typing import Callable

from app import errors
from app.errors import BerthError

from .chain import verify
from .log import AuditLog
from .query import COLUMNS, AuditFilter, count_events, iter_events

FORMATS = ("csv", "json", "html", "pdf")
CSV_COLUMNS = COLUMNS + ("state",)
PROGRESS_EVERY = 2000
# OWASP, "CSV Injection": a cell a spreadsheet would read as a formula (or that becomes one once a
# tab or carriage return is stripped) is written with a leading single quote, which spreadsheets show
# as text and never evaluate; the csv module does the quoting of embedded quotes and separators
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(BerthError, ValueError):
    """A request that cannot be exported (format, folder, no PDF writer); the CLI shows it as is."""

    default_code = errors.USAGE


@dataclass
class ExportResult:
    path: Path
    format: str
    count: int
    verdict: object  # chain.Verdict of the whole log at export time (None: not verified, CSV only)


def export_events(db, flt: AuditFilter, fmt: str, path, *, exported_by: str,
                  pdf_writer: Callable | None = None, progress: Callable[[int, int], None] | None = None,
                  verify_chain: bool = False) -> ExportResult:
    """Write the events matching `flt` (oldest first) to `path` as `fmt`; `progress(done, total)`
    every few thousand rows. Raises ExportError (or the writer's error) after recording it.
    The chain is walked for the reports (json, html, pdf: they show the verification) and not for a
    CSV, which has no place to show it and whose export, at a million events, the walk would cost
    six times over; `verify_chain=True` walks it for a CSV too (the verdict is None when not walked)."""
    fmt = (fmt or "").lower().lstrip(".")
    path, flt = Path(path), flt or AuditFilter()
    audit = AuditLog(db)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        if fmt not in FORMATS:
            raise ExportError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
        if fmt == "pdf" and pdf_writer is None:
            raise ExportError("a PDF export needs a PDF writer (app.ui.audit.report_pdf.write_pdf)")
        if not path.parent.is_dir():
            raise ExportError(f"folder {str(path.parent)!r} does not exist")
        with _snapshot(db.conn):
            total = count_events(db, flt)
            chain = fmt != "csv" or bool(verify_chain)
            # one progress scale for the whole job: the chain walk, then each pass over the rows
            links = db.execute("select count(*) from events where seq is not null").fetchone()[0] if chain else 0
            job = _Job(db, flt, exported_by, None, total, progress, links + total * PASSES[fmt])
            job.verdict = verify(db.conn, progress=job.tick) if chain else None
            job.done = links
            count = WRITERS[fmt](job, tmp, pdf_writer)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        try:
            audit.record("report.export", "failed", detail=f"{fmt or '?'} to {path.name}: {str(e) or type(e).__name__}")
        except Exception as also:  # the export's own error is the one to see
            e.add_note(f"recording the failed export failed too: {also}")
        raise
    audit.record("report.export", "ok", detail=f"{fmt}, {count} events, {path.name}; filter: {flt.describe()}")
    return ExportResult(path, fmt, count, job.verdict)


class _snapshot:
    """A read transaction (WAL: writers go on, we keep seeing the log as it was)."""

    def __init__(self, conn):
        self.conn, self.own = conn, not conn.in_transaction

    def __enter__(self):
        if self.own:
            self.conn.execute("BEGIN")
        return self

    def __exit__(self, *exc):
        if self.own and self.conn.in_transaction:
            self.conn.execute("ROLLBACK")  # nothing was written: ending the read is all


@dataclass
class _Job:
    db: object
    flt: AuditFilter
    exported_by: str
    verdict: object
    total: int  # matching events
    progress: Callable | None
    work: int  # progress units: chain links walked + rows read, over all passes
    done: int = 0  # units finished before the current pass

    def tick(self, n: int) -> None:
        if self.progress:
            self.progress(min(self.done + n, self.work), self.work)

    def events(self):
        """The matching events, oldest first; one pass, with progress every few thousand rows."""
        n = 0
        for e in iter_events(self.db, self.flt):
            yield e
            n += 1
            if n % PROGRESS_EVERY == 0:
                self.tick(n)
        self.tick(n)
        self.done += n

    def report(self):
        from .report import ReportBuilder

        b = ReportBuilder(self.flt, exported_by=self.exported_by, verdict=self.verdict)
        for e in self.events():
            b.add(e)
        return b.report()


def csv_cell(value):
    """A value as a CSV cell that no spreadsheet evaluates: `=1+1` is written `'=1+1` (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv(job: _Job, tmp: Path, _writer) -> int:
    row = itemgetter(*CSV_COLUMNS)  # iter_events rows carry every column
    count = [0]

    def rows():
        for e in job.events():
            count[0] += 1
            yield [csv_cell(v) for v in row(e)]

    # a BOM tells Excel "this is UTF-8"; newline="" lets csv write its own \r\n
    with open(tmp, "w", encoding="utf-8", newline="", buffering=1 << 20) as f:
        f.write("\ufeff")
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        w.writerows(rows())
    return count[0]


def _json(job: _Job, tmp: Path, _writer) -> int:
    from datetime import datetime, timezone

    from .period import as_bound, iso

    flt = job.flt
    bounds = {"since_utc": as_bound(flt.since) if flt.since else "",  # "7d" means nothing a month later
              "until_utc": as_bound(flt.until, end=True) if flt.until else ""}
    head = {"filter": dict(asdict(flt), description=flt.describe(), **bounds), "exported_by": job.exported_by,
            "generated_at": iso(datetime.now(timezone.utc)), "verification": job.verdict.to_dict(),
            # where the chain ended when the export was read: `berth audit verify --file` checks the events up to it
            "head": {"seq": job.verdict.checked, "hash": job.verdict.head_hash,
                     "desktop": getattr(getattr(job.db, "audit_anchor", None), "desktop", "")}}
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "events": [')
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        for e in job.events():
            f.write(("\n  " if not n else ",\n  ") + dumps(e))
            n += 1
        f.write("\n ]\n}\n")
    return n


def _html(job: _Job, tmp: Path, _writer) -> int:
    from .report import write_html

    report = job.report()
    with open(tmp, "w", encoding="utf-8") as f:
        return write_html(report, job.events(), f)


def _pdf(job: _Job, tmp: Path, writer) -> int:
    report = job.report()
    count = [0]

    def rows():
        for e in iter_events(job.db, job.flt):
            count[0] += 1
            yield e

    writer(report, rows(), str(tmp), lambda done, _total: job.tick(done))
    job.tick(count[0])
    if not tmp.exists():
        raise ExportError("the PDF writer wrote no file")
    return count[0]


WRITERS = {"csv": _csv, "json": _json, "html": _html, "pdf": _pdf}
PASSES = {"csv": 1, "json": 1, "html": 2, "pdf": 2}  # html and pdf read once for the report, once for the table
