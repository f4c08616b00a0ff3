"""docs/audit.md is enough to check a chain: the hashes of a real log (events from before the chain
existed included) are recomputed here from the rule as the doc states it, without app/audit/chain.py."""
import hashlib
import re
import sqlite3
from pathlib import Path

import sqlite_utils

from app.audit.log import AuditLog
from app.store.db import MIGRATIONS, migrate

DOC = (Path(__file__).resolve().parent.parent / "docs" / "audit.md").read_text()


def doc_fields() -> list[str]:
    """The field order as the doc lists it (so a doc that drifts from the code fails here)."""
    found = re.search(r"the fields, in this order: `([^`]+)` \((\d+) fields\)", DOC.replace("\n  ", " "))
    assert found, "docs/audit.md no longer lists the hashed fields"
    fields = found.group(1).split()
    assert len(fields) == int(found.group(2))
    return fields


def doc_hash(prev_hash: str, row: dict, fields: list[str]) -> str:
    """The doc's rule, written from its text: U+001F between prev_hash and each field, numbers in
    decimal, NULL as `None`, UTF-8, sha256 in lowercase hex."""
    text = ["None" if row[f] is None else str(row[f]) for f in fields]
    return hashlib.sha256("\x1f".join([prev_hash] + text).encode("utf-8")).hexdigest()


def test_the_doc_states_the_rule_it_is_checked_against():
    for words in ("U+001F", "NULL as the four letters `None`", "encoded as UTF-8", "64 zeros", "lowercase hex"):
        assert words in DOC.replace("\n  ", " "), words


def test_a_real_chain_recomputed_from_the_doc_alone(tmp_path):
    path = tmp_path / "berth.sqlite"
    db = sqlite_utils.Database(path)
    names = [name for name, _ in MIGRATIONS]
    assert migrate(db, MIGRATIONS[:names.index("0005_audit_chain")])  # a log from before the chain
    db["events"].insert({"id": "old1", "ts": "2024-01-05T00:00:00+00:00", "actor": "a@b", "action": "deploy",
                         "outcome": "ok"})  # ssh_user, server, model, ... stay NULL
    assert "0005_audit_chain" in migrate(db)
    log = AuditLog(db)
    started = log.begin("deploy", server="box", model="iris", version="1.0.0", sha256="ab" * 32,
                        reason="Grüße, naïve café ✓")  # not ASCII: UTF-8 is part of the rule
    log.finish(started, "failed", detail="line one\nline two\x1fafter a unit separator")
    log.record("server.edit", "ok", server="box", old="22", new="2222", ssh_user=None)
    db.close()

    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("select * from events order by seq")]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["ssh_user"] is None and rows[1]["pid"] > 0  # both NULL and numbers are hashed
    fields = doc_fields()
    prev = "0" * 64
    for row in rows:
        assert row["prev_hash"] == prev, row["seq"]
        assert doc_hash(prev, row, fields) == row["hash"], row["seq"]
        prev = row["hash"]
    head = conn.execute("select value from audit_meta where key = 'head'").fetchone()[0]
    assert head == f"4 {prev}"
    conn.close()
