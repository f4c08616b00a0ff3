"""The server journals as anchors of this desktop's log (a loopback sshd): each change records the
desktop's chain head in the journal's "started" line, and `verify --servers` and `audit sync` find
a local history that contradicts a journal even when the attacker could also re-sign the local
anchor (a root user on the desktop can rewrite anything local; the servers are what catches that)."""
import gc
import json
import sqlite3

from app.audit.anchor import record_mac
from app.audit.chain import CHAINED, GENESIS, event_hash
from app.anchoring import anchor_account
from app.workspace import Workspace
from cli_kit import berth, iris_copy
from test_audit_anchor import attacker_rewrite


def resign(home, keyring_backend) -> None:
    """The attacker with the keyring too: a valid anchor for the rewritten log."""
    secret = json.loads(keyring_backend.passwords[("berth", anchor_account(home / "berth.sqlite"))])
    conn = sqlite3.connect(home / "berth.sqlite")
    seq, hash_ = conn.execute("select seq, hash from events order by seq desc limit 1").fetchone()
    conn.close()
    at = "2026-12-01T00:00:00.000+00:00"
    mac = record_mac(bytes.fromhex(secret["key"]), secret["desktop"], seq, hash_, at)
    (home / "berth.anchor").write_text(json.dumps({"desktop": secret["desktop"], "seq": seq, "hash": hash_,
                                                   "at": at, "mac": mac}))


def journal_lines(root):
    return [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines()]


def test_journal_heads_and_events_catch_a_rewritten_local_log(capsys, box, berth_home, memory_keyring, tmp_path):
    _srv, root = box
    ws = Workspace()
    ws.audit.record("settings.change", "ok", detail="before the deploy", actor="alice@laptop")
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box").code == 0
    started = next(e for e in journal_lines(root) if e["outcome"] == "started")
    head = started["desktop_head"]
    local = {r[0]: r[1] for r in ws.db.execute("select seq, hash from events")}
    assert head["desktop"] == ws.anchor.desktop and local[head["seq"]] == head["hash"]
    assert ws.db.execute("select seq from events where id = ?", [started["id"]]).fetchone()[0] <= head["seq"]
    r = berth(capsys, "audit", "verify", "--servers")
    assert r.code == 0 and "box: the journal agrees: 2 event(s) of this desktop" in r.out, r
    assert "1 recorded head(s) are prefixes" in r.out

    # an export forged by whoever holds the file: an event changed, every hash and the head recomputed
    export, forged = tmp_path / "all.json", tmp_path / "forged.json"
    assert berth(capsys, "audit", "export", "-o", export).code == 0
    r = berth(capsys, "audit", "verify", "--file", export, "--servers")
    assert r.code == 0 and "1 head(s) recorded in the journal of box agree" in r.out, r
    data = json.loads(export.read_text())
    prev = GENESIS
    for e in sorted(data["events"], key=lambda e: e["seq"]):
        if e["seq"] == 1:
            e["actor"] = "mallory@elsewhere"
        e["prev_hash"] = prev
        e["hash"] = prev = event_hash(prev, [e[k] for k in CHAINED])
    data["head"]["hash"] = prev
    forged.write_text(json.dumps(data))
    assert berth(capsys, "audit", "verify", "--file", forged).code == 0  # consistent in itself
    r = berth(capsys, "audit", "verify", "--file", forged, "--servers")
    assert r.code == 1 and "the journal of box (deploy iris 1.0.0 started on box" in r.out, r
    assert "the export or the log it came from was rewritten" in r.out
    ws.db.close()
    ws.anchor.close()
    gc.collect()
    pristine = (berth_home / "berth.sqlite").read_bytes(), (berth_home / "berth.anchor").read_bytes()

    # 1. the deploy's started event is deleted, the chain recomputed and the anchor re-signed
    attacker_rewrite(berth_home / "berth.sqlite", lambda rows: [r for r in rows if r["id"] != started["id"]])
    resign(berth_home, memory_keyring)
    assert berth(capsys, "audit", "verify").code == 0  # everything local agrees with the attacker
    r = berth(capsys, "audit", "verify", "--servers")
    assert r.code == 1, r
    assert f"the journal of box holds event {started['id'][:12]} (deploy iris 1.0.0 started on box" in r.out
    assert "does not have it: deleted, or the log was replaced" in r.out
    r = berth(capsys, "audit", "sync", "--server", "box")  # the import notices it too, and says so once
    assert r.code == 0 and "recorded by this desktop, but the local log does not have it" in r.out, r
    problems = berth(capsys, "audit", "list", "--action", "journal.verify", "--json").json()
    assert len(problems) == 1 and started["id"][:12] in problems[0]["detail"]
    r = berth(capsys, "audit", "verify", "--servers")  # the import does not launder it
    assert r.code == 1 and "has it only as imported from a journal" in r.out, r
    gc.collect()

    # 2. an earlier event is changed (the actor), the chain recomputed, the anchor re-signed
    (berth_home / "berth.sqlite").write_bytes(pristine[0])
    (berth_home / "berth.anchor").write_bytes(pristine[1])
    for extra in ("berth.sqlite-wal", "berth.sqlite-shm"):
        (berth_home / extra).unlink(missing_ok=True)
    assert berth(capsys, "audit", "verify", "--servers").code == 0
    gc.collect()
    attacker_rewrite(berth_home / "berth.sqlite",
                     lambda rows: [dict(r, actor="mallory@elsewhere") if r["seq"] == 1 else r for r in rows])
    resign(berth_home, memory_keyring)
    assert berth(capsys, "audit", "verify").code == 0
    r = berth(capsys, "audit", "sync", "--server", "box")  # nothing new to import, and still noticed
    assert r.code == 0 and "0 new of" in r.out and "the log was rewritten" in r.out, r
    r = berth(capsys, "audit", "verify", "--servers", "--json")
    assert r.code == 1, r
    box_check = next(s for s in r.json()["servers"] if s["server"] == "box")
    assert any(f"event #{head['seq']} has hash" in p and "the journal of box (deploy iris 1.0.0 started" in p
               and "the log was rewritten" in p for p in box_check["problems"]), box_check


def test_an_unreachable_server_fails_the_server_check(capsys, box, sshd_factory):
    srv, _root = box
    srv.stop()
    r = berth(capsys, "audit", "verify", "--servers")
    assert r.code == 1 and "box: cannot read its journal" in r.out, r


def test_changed_content_of_own_and_imported_events_is_named(capsys, sshd, tmp_path, monkeypatch, memory_keyring):
    """Desktop B deploys, desktop A imports it; A's attacker changes B's imported event and A's own
    started event (every hash recomputed, the anchor re-signed): A's verify --servers names both."""
    from agent_kit import stop_all

    root = tmp_path / "shared root"
    homes = {w: tmp_path / f"home-{w}" for w in "ab"}
    try:
        for who in "ab":
            monkeypatch.setenv("BERTH_HOME", str(homes[who]))
            assert berth(capsys, "server", "add", "box", "--host", sshd.host, "--port", sshd.port, "--user",
                         sshd.user, "--key", sshd.key_path, "--root", str(root), "--accept-host-key",
                         sshd.fingerprint).code == 0
            assert berth(capsys, "deploy", iris_copy(tmp_path, f"1.0.{ord(who)}"), "--server", "box").code == 0
        monkeypatch.setenv("BERTH_HOME", str(homes["a"]))
        r = berth(capsys, "audit", "verify", "--servers")  # B's events, not imported yet, are not A's to hold
        assert r.code == 0, r
        assert berth(capsys, "audit", "sync", "--server", "box").code == 0
        r = berth(capsys, "audit", "verify", "--servers")
        assert r.code == 0 and "2 imported event(s) unchanged" in r.out, r
        gc.collect()
        imported = "1.0.98"  # B's version
        mine = "1.0.97"

        def edit(rows):
            for r in rows:
                if r["version"] == imported and r["outcome"] == "ok":
                    r["detail"] = "nothing happened here"
                if r["version"] == mine and r["outcome"] == "started":
                    r["reason"] = "approved by the CTO"
            return rows

        attacker_rewrite(homes["a"] / "berth.sqlite", edit)
        resign(homes["a"], memory_keyring)
        assert berth(capsys, "audit", "verify").code == 0
        r = berth(capsys, "audit", "verify", "--servers", "--json")
        assert r.code == 1, r
        problems = next(s for s in r.json()["servers"] if s["server"] == "box")["problems"]
        assert any("(deploy iris 1.0.97 started on box" in p and "reason 'approved by the CTO' here, '' in the journal"
                   in p for p in problems), problems
        assert any("(deploy iris 1.0.98 ok on box" in p and "detail 'nothing happened here' here" in p
                   for p in problems), problems
    finally:
        stop_all(root)
