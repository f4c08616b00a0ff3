"""The exports read as an auditor reads them (issue 13): the PDF carries a long reason whole, with its
line break (pdftotext); the HTML wraps every column and keeps line breaks; a CSV cell that a
spreadsheet would evaluate as a formula is written as text (OWASP, "CSV Injection") and reads back
with Python's csv module (and pandas when installed); `berth audit list` shows the reason."""
import csv
import re
import shutil
import subprocess
import unicodedata

import pytest
import sqlite_utils

from app.audit.export import export_events
from app.audit.log import AuditLog
from app.audit.query import AuditFilter
from app.store.db import migrate, open_db
from cli_kit import berth

REASON = ("CHG-1234: \"retrain after the November drift review, approved by the model risk board; "
          "the previous version stays available for rollback until the quarterly audit\"\n"
          "second line: see ticket CHG-1234 in the tracker and the sign-off of both reviewers")
FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\tx", "\r=1"]


def make_db():
    db = sqlite_utils.Database(memory=True)
    migrate(db)
    log = AuditLog(db)
    log.record("deploy", "ok", server="alpha", model="iris", version="2.0", old="1.0", new="2.0",
               actor="alice@laptop", reason=REASON, detail="health check passed after 3 tries " * 4,
               ts="2026-11-01T09:00:00.000+00:00")
    for i, f in enumerate(FORMULAS):
        log.record("rollback", "ok", server="alpha", model="iris", version="1.0", actor="alice@laptop",
                   reason=f, detail=f, ts=f"2026-11-01T10:00:0{i}.000+00:00")
    return db


def words(text: str) -> str:
    """Whitespace as one space, and Qt's ligatures (ﬁ, ﬀ) as the letters pdftotext gives them for."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils (pdftotext) not installed")
def test_pdf_carries_the_whole_reason_with_its_line_break(tmp_path):
    from app.ui.audit.report_pdf import write_pdf

    target = tmp_path / "r.pdf"
    export_events(make_db(), AuditFilter(), "pdf", target, exported_by="alice@laptop", pdf_writer=write_pdf)
    text = subprocess.run(["pdftotext", str(target), "-"], capture_output=True, text=True, check=True).stdout
    assert "…" not in text.split("Events", 1)[1].replace("… (", "")  # nothing in the table was cut
    first, second = REASON.split("\n")
    assert words(first) in words(text) and words(second) in words(text)
    # the reason's own line break is a line break in the PDF: its second line starts a line
    assert re.search(r"^second line: see ticket", text, re.M)
    n = int(re.search(r"page \d+ of (\d+)", text)[1])
    assert f"page {n} of {n}" in text and text.count("Events (continued)") == n - 3  # title, summary, events


def test_html_wraps_every_column_and_keeps_line_breaks(tmp_path):
    export_events(make_db(), AuditFilter(), "html", tmp_path / "r.html", exported_by="alice@laptop")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "min-height" not in html  # no screen of blank under the title
    css = html.split("<style>", 1)[1].split("</style>", 1)[0]
    # every column wraps between words and inside a word too long for it; reason and detail may break
    # anywhere, so one unbroken reason cannot widen the table (short words elsewhere stay whole)
    assert re.search(r"(^|})th,td\{[^}]*overflow-wrap:break-word", css, re.M)
    assert re.search(r"table\.events td\.r,table\.events td\.d\{overflow-wrap:anywhere\}", css)
    assert re.search(r"(^|})td\{[^}]*white-space:pre-wrap", css, re.M)
    assert "until the quarterly audit&quot;\nsecond line" in html


def test_csv_neutralises_formulas_and_reads_back(tmp_path):
    path = tmp_path / "out.csv"
    export_events(make_db(), AuditFilter(), "csv", path, exported_by="alice@laptop")
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["reason"] == REASON  # quoted, its line break kept
    for row, f in zip(rows[1:], FORMULAS):
        assert row["reason"] == row["detail"] == "'" + f
    assert rows[1]["ts"] == "2026-11-01T10:00:00.000+00:00" and rows[1]["seq"] == "2"  # other cells as they are
    try:
        import pandas
    except ImportError:
        return
    frame = pandas.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(frame["reason"]) == [REASON] + ["'" + f for f in FORMULAS]


def test_audit_list_shows_the_reason(capsys):
    log = AuditLog(open_db())
    log.record("rollback", "ok", server="alpha", model="iris", version="1.0", actor="alice@laptop",
               reason="too slow\nsee CHG-9", ts="2026-11-01T10:00:00.000+00:00")
    r = berth(capsys, "audit", "list")
    head, row = r.out.splitlines()[:2]
    assert r.code == 0 and "REASON" in head.split() and "too slow see CHG-9" in row
    assert head.index("REASON") < head.index("DETAIL")
    r = berth(capsys, "audit", "list", "--json")
    assert [e["reason"] for e in r.json()] == ["too slow\nsee CHG-9"]
