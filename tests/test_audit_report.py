"""Audit reports and exports: the summary, recovery times and version timelines computed from a known
history; CSV and JSON that read back as the filtered log; HTML that escapes what operators typed;
exports that fail leave no file; every export is itself audited."""
import csv
import json

import pytest
import sqlite_utils

from app.audit.export import ExportError, export_events
from app.audit.log import AuditLog
from app.audit.query import AuditFilter, iter_events
from app.audit.report import build_report, duration_text
from app.store.db import migrate

ALICE, BOB = "alice@laptop", "bob@desk"


def t(hhmmss: str) -> str:
    return f"2026-11-01T{hhmmss}.000+00:00"


def make_db():
    db = sqlite_utils.Database(memory=True)
    migrate(db)
    log = AuditLog(db)

    def deploy(start, end, version, outcome, old="", actor=ALICE):
        s = log.record("deploy", "started", server="alpha", model="iris", version=version, actor=actor, ts=t(start))
        if outcome:
            extra = {"old": old, "new": version} if outcome == "ok" else {"detail": "health check failed"}
            log.record("deploy", outcome, server="alpha", model="iris", version=version, actor=actor, ref=s.id,
                       ts=t(end), **extra)

    log.record("server.add", "ok", server="alpha", actor=ALICE, ts=t("08:00:00"))
    deploy("09:00:00", "09:00:10", "1.0", "ok", old="0.9")
    log.record("deploy", "failed", server="beta", model="wine", version="5", actor=BOB, ts=t("09:30:00"))
    deploy("10:00:00", "10:00:30", "2.0", "failed")
    log.record("rollback.auto", "ok", server="alpha", model="iris", version="1.0", old="2.0", new="1.0", actor=ALICE,
               ts=t("10:00:40"))
    deploy("11:00:00", "11:00:20", "2.1", "failed")
    deploy("11:01:00", "11:01:20", "2.1", "failed")  # still down: the outage began at 11:00:20
    log.record("connect", "failed", server="gamma", actor=BOB, detail="<script>alert(1)</script> & more",
               ts=t("11:05:00"))
    log.record("rollback", "ok", server="alpha", model="iris", version="0.9", old="1.0", new="0.9", actor=BOB,
               reason="too slow", ts=t("11:10:20"))
    deploy("12:00:00", "", "3.0", "")  # never finished (pid 0: not running here): interrupted
    deploy("12:29:00", "12:30:00", "3.1", "ok", old="0.9")
    return db


def test_summary_counts_and_mean_time_to_recovery():
    report = build_report(iter_events(make_db()), exported_by="auditor@here")
    by_key = {(s.server, s.model): s for s in report.summaries}
    iris, wine = by_key[("alpha", "iris")], by_key[("beta", "wine")]
    assert (iris.deploys_ok, iris.deploys_failed, iris.interrupted, iris.rollbacks, iris.auto_rollbacks) == \
        (2, 3, 1, 1, 1)
    # 10:00:30 -> 10:00:40 (automatic rollback) and 11:00:20 -> 11:10:20 (operator rollback): (10 + 600) / 2
    assert iris.mttr_seconds == pytest.approx(305.0)
    assert iris.mttr_text == "5 min 05 s"
    assert (wine.deploys_failed, wine.mttr_seconds, wine.mttr_text) == (1, None, "n/a")
    assert report.servers == ["alpha", "beta", "gamma"] and report.models == ["iris", "wine"]
    assert report.count == 16 and report.first_ts == t("08:00:00") and report.last_ts == t("12:30:00")
    assert report.totals().deploys_failed == 4


def test_version_timeline():
    report = build_report(iter_events(make_db()))
    spans = [(s.start, s.end, s.version, s.how, s.by) for s in report.timelines[("alpha", "iris")]]
    assert spans == [
        ("", t("09:00:10"), "0.9", "", ""),  # current before the first change seen
        (t("09:00:10"), t("10:00:40"), "1.0", "deploy", ALICE),
        (t("10:00:40"), t("11:10:20"), "1.0", "automatic rollback", ALICE),
        (t("11:10:20"), t("12:30:00"), "0.9", "rollback", BOB),
        (t("12:30:00"), "now", "3.1", "deploy", ALICE),
    ]
    assert ("beta", "wine") not in report.timelines  # a failed deploy changes nothing
    bounded = build_report(iter_events(make_db()), AuditFilter(until="2026-11-01"))
    assert bounded.timelines[("alpha", "iris")][-1].end == "end of period"


def test_duration_text():
    assert [duration_text(x) for x in (None, 0.25, 42, 252, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == \
        ["n/a", "250 ms", "42 s", "4 min 12 s", "3 h 05 min", "2 d 4 h"]


def test_csv_round_trip_with_filters(tmp_path):
    db = make_db()
    flt = AuditFilter(server="alpha", action="deploy", since="2026-11-01T10:00")
    calls = []
    result = export_events(db, flt, "csv", tmp_path / "out.csv", exported_by=ALICE, verify_chain=True,
                           progress=lambda done, total: calls.append((done, total)))
    raw = (tmp_path / "out.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # Excel: BOM, CRLF
    with open(tmp_path / "out.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = list(iter_events(db, flt))
    assert result.count == len(expected) == len(rows) == 9
    assert rows == [{k: str(v) for k, v in e.items()} for e in expected]
    assert {r["state"] for r in rows} == {"started", "failed", "interrupted", "ok"}
    # one scale: the 16 links of the chain walk, then the 9 rows
    assert result.verdict.ok and calls[-1] == (25, 25) and all(d <= t == 25 for d, t in calls)


def test_json_round_trip(tmp_path):
    db = make_db()
    flt = AuditFilter(model="iris", outcome="failed")
    result = export_events(db, flt, "JSON", tmp_path / "out.json", exported_by=ALICE)
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert data["events"] == list(iter_events(db, flt)) and len(data["events"]) == 3 == result.count
    assert data["filter"]["model"] == "iris" and data["filter"]["description"] == "model=iris, outcome=failed"
    assert data["exported_by"] == ALICE and data["verification"]["ok"] is True
    assert data["verification"]["head_hash"] == result.verdict.head_hash and len(result.verdict.head_hash) == 64


def test_html_report_escapes_and_reads(tmp_path):
    db = make_db()
    export_events(db, AuditFilter(), "html", tmp_path / "r.html", exported_by="<b>eve</b>@x")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "&lt;b&gt;eve&lt;/b&gt;@x" in html and "<b>eve" not in html
    assert "audit chain intact: 16 events" in html and "5 min 05 s" in html
    assert "automatic rollback" in html and "before the period" in html and "interrupted" in html
    assert html.count("<tr>") >= 16 + 3 and html.rstrip().endswith("</html>")


def test_export_is_audited_after_the_export(tmp_path):
    db = make_db()
    result = export_events(db, AuditFilter(server="beta"), "csv", tmp_path / "beta.csv", exported_by=ALICE)
    assert result.count == 1
    last = list(iter_events(db))[-1]
    assert (last["action"], last["outcome"]) == ("report.export", "ok")
    assert "csv" in last["detail"] and "1 events" in last["detail"] and "beta.csv" in last["detail"]
    # the export event is not in the file it describes
    assert "report.export" not in (tmp_path / "beta.csv").read_text(encoding="utf-8-sig")


def test_failed_export_leaves_no_file_and_is_audited(tmp_path):
    db = make_db()
    target = tmp_path / "report.pdf"

    def broken_writer(report, events, path, progress):
        with open(path, "wb") as f:
            f.write(b"%PDF-1.4 half a file")
            for _ in events:
                pass
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        export_events(db, AuditFilter(), "pdf", target, exported_by=ALICE, pdf_writer=broken_writer)
    assert list(tmp_path.iterdir()) == []
    last = list(iter_events(db))[-1]
    assert (last["action"], last["outcome"]) == ("report.export", "failed") and "disk full" in last["detail"]

    target.write_text("an older report")  # a failed export never touches the file already there
    with pytest.raises(ExportError, match="PDF writer"):
        export_events(db, AuditFilter(), "pdf", target, exported_by=ALICE)
    with pytest.raises(ExportError, match="unknown export format"):
        export_events(db, AuditFilter(), "docx", target, exported_by=ALICE)
    assert target.read_text() == "an older report" and len(list(tmp_path.iterdir())) == 1
    assert [e["outcome"] for e in iter_events(db, AuditFilter(action="report.export"))] == ["failed"] * 3


def test_csv_skips_the_chain_walk_unless_asked(tmp_path):
    db = make_db()
    result = export_events(db, AuditFilter(), "csv", tmp_path / "all.csv", exported_by=ALICE)
    assert result.verdict is None and result.count == 16
    report = export_events(db, AuditFilter(), "json", tmp_path / "all.json", exported_by=ALICE, verify_chain=False)
    assert report.verdict.ok  # JSON, HTML and PDF carry the verdict: they always verify
