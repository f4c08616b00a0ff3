"""`berth audit list | verify | export` from the command line: filters, the chain's verdict and exit
code, exports in each format (the PDF through Qt's writer, headless), each export on record."""
import csv
import json
import subprocess
import sys
from pathlib import Path

from app.audit.log import AuditLog
from app.store.db import open_db
from cli_kit import berth

REPO = Path(__file__).resolve().parent.parent


def seed():
    log = AuditLog(open_db())
    for i, (server, action, outcome) in enumerate([("alpha", "deploy", "ok"), ("alpha", "deploy", "failed"),
                                                   ("beta", "rollback", "ok"), ("alpha", "stop", "ok")]):
        log.record(action, outcome, server=server, model="iris", version=f"1.{i}.0", actor="alice@laptop",
                   ts=f"2026-11-0{i + 1}T09:00:00.000+00:00", detail=f"step {i}")


def test_list_filters_and_verify(capsys):
    seed()
    r = berth(capsys, "audit", "list", "--server", "alpha", "--since", "2026-11-02", "--json")
    assert r.code == 0 and [e["version"] for e in r.json()] == ["1.3.0", "1.1.0"]
    r = berth(capsys, "audit", "list", "--outcome", "failed", "--actor", "alice", "--json")
    assert [e["detail"] for e in r.json()] == ["step 1"]
    r = berth(capsys, "audit", "list", "--since", "last week")
    assert r.code == 2 and "not a time" in r.err  # wrong usage (issue 13)
    r = berth(capsys, "audit", "verify", "--json")
    assert r.code == 0 and r.json()["ok"] and r.json()["checked"] == 4
    db = open_db()
    db.execute("update events set detail = 'quiet' where seq = 2")
    db.conn.commit()
    r = berth(capsys, "audit", "verify")
    assert r.code == 1 and "BROKEN at event #2" in r.out and "changed" in r.out


def test_exports_csv_json_pdf(capsys, tmp_path):
    seed()
    r = berth(capsys, "audit", "export", "--server", "alpha", "-o", tmp_path / "alpha.csv")
    assert r.code == 0 and "3 events" in r.out, r
    with open(tmp_path / "alpha.csv", encoding="utf-8-sig", newline="") as f:
        assert [row["version"] for row in csv.DictReader(f)] == ["1.0.0", "1.1.0", "1.3.0"]
    r = berth(capsys, "audit", "export", "--format", "json", "-o", tmp_path / "all.json")
    data = json.loads((tmp_path / "all.json").read_text())
    assert r.code == 0 and data["verification"]["ok"] and len(data["events"]) == 5  # + the CSV export
    r = berth(capsys, "audit", "export", "-o", tmp_path / "x.txt")
    assert r.code == 1 and "--format" in r.err
    exports = berth(capsys, "audit", "list", "--action", "report.export", "--json").json()
    assert [e["outcome"] for e in exports] == ["ok", "ok"]


def test_pdf_export_runs_headless(tmp_path, berth_home):
    """A separate process with no display and no Qt application: what an operator's cron job gets."""
    seed()
    env = {"PATH": "/usr/bin:/bin", "BERTH_HOME": str(berth_home), "PYTHONPATH": str(REPO),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    out = tmp_path / "report.pdf"
    done = subprocess.run([sys.executable, "-m", "app", "audit", "export", "-o", str(out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"%PDF") and "audit chain intact" in done.stdout
