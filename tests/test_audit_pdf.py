"""The PDF report through Qt's PDF writer, headless: a real PDF, several pages for 300 events, "page N
of M" that matches the real page count, and (when poppler is installed) a first page with ink on it."""
import re
import shutil
import subprocess

import pytest
import sqlite_utils

from app.audit.export import export_events
from app.audit.log import AuditLog
from app.audit.query import AuditFilter
from app.store.db import migrate


@pytest.fixture
def log_db():
    db = sqlite_utils.Database(memory=True)
    migrate(db)
    log = AuditLog(db)
    for i in range(150):
        ts = f"2026-11-02T{i // 60:02d}:{i % 60:02d}:00.000+00:00"
        started = log.record("deploy", "started", server=f"srv-{i % 3}", model="iris", version=f"1.{i}",
                             actor="alice@laptop", ts=ts)
        log.record("deploy", "failed" if i % 10 == 3 else "ok", server=f"srv-{i % 3}", model="iris", version=f"1.{i}",
                   old=f"1.{i - 3}", new=f"1.{i}", ref=started.id, actor="alice@laptop", ts=ts.replace(":00.000", ":30.000"),
                   detail="a long detail line that will not fit its column and is cut with an ellipsis " * 2)
    return db


def pages(path) -> int:
    if shutil.which("pdfinfo"):
        out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
        return int(re.search(r"^Pages:\s+(\d+)", out, re.M)[1])
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


def test_pdf_report_is_written(log_db, tmp_path):
    from app.ui.audit.report_pdf import write_pdf

    target = tmp_path / "report.pdf"
    seen = []
    result = export_events(log_db, AuditFilter(), "pdf", target, exported_by="alice@laptop", pdf_writer=write_pdf,
                           progress=lambda done, total: seen.append((done, total)))
    assert result.count == 300 and result.format == "pdf" and result.verdict.ok
    data = target.read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    n = pages(target)
    assert n > 1 + 300 // 45  # title, summary/timelines, then ~40 rows a page
    # the chain walk (300 links), then two passes: the report, then the table
    assert seen[-1] == (900, 900) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]
    if shutil.which("pdftotext"):
        last = subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), str(target), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert f"page {n} of {n}" in last and "300 events" in last
        first = subprocess.run(["pdftotext", "-l", "1", str(target), "-"], capture_output=True, text=True,
                               check=True).stdout
        assert "Berth audit report" in first and "audit chain intact" in first and result.verdict.head_hash in first


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="pdftoppm (poppler-utils) not installed")
def test_pdf_first_page_is_not_blank(log_db, tmp_path):
    from PySide6.QtGui import QImage

    from app.ui.audit.report_pdf import write_pdf

    export_events(log_db, AuditFilter(server="srv-1"), "pdf", tmp_path / "r.pdf", exported_by="alice@laptop",
                  pdf_writer=write_pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(tmp_path / "r.pdf"),
                    str(tmp_path / "page")], check=True)
    png = next(tmp_path.glob("page*.png"))
    image = QImage(str(png))
    assert not image.isNull() and image.width() > image.height()  # A4 landscape
    inked = sum(1 for y in range(0, image.height(), 2) for x in range(0, image.width(), 2)
                if image.pixelColor(x, y).lightness() < 200)
    assert inked > 200  # the title, facts and verdict box; a blank page has none
