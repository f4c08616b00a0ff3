"""Attacks on the local audit log that the chain alone cannot see, each caught by an anchor outside
berth.sqlite: the emptied or deleted file, a consistently rewritten or extended chain, an edited or deleted
sidecar, a tampered export, a garbage database. Real SQLite files, the test keyring, the real CLI;
each ends in one clear message, exit 1, and leaves the evidence as it was."""
import gc
import json
import sqlite3

import pytest

from app.audit.chain import CHAINED, GENESIS, event_hash, set_head, verify
from app.workspace import Workspace
from cli_kit import berth


def seed(n=6) -> Workspace:
    ws = Workspace()
    for i in range(n):
        ws.audit.record("deploy", "ok", server="alpha", model="iris", version=f"1.{i}.0", actor="alice@laptop",
                        detail=f"step {i}")
    return ws


def close(ws: Workspace) -> None:
    ws.db.close()
    ws.anchor.close()
    gc.collect()  # the CLI's own workspaces too: nothing holds the file open


def sidecar(home):
    return home / "berth.anchor"


def attacker_rewrite(path, edit) -> None:
    """What someone who can write the file does: edit the rows, then recompute every seq, prev_hash
    and hash with the chain's own rule, and the head in audit_meta; chain.verify then passes."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = edit([dict(r) for r in conn.execute("select * from events order by seq")])
    conn.execute("delete from events")
    prev = GENESIS
    for seq, r in enumerate(rows, 1):
        r.update(seq=seq, prev_hash=prev)
        r["hash"] = prev = event_hash(prev, [r[k] for k in CHAINED])
        conn.execute(f"insert into events ({', '.join(r)}) values ({', '.join('?' * len(r))})", list(r.values()))
    set_head(conn, len(rows), prev)
    conn.commit()
    assert verify(conn).ok  # the chain alone is fooled
    conn.close()


def test_a_new_log_is_anchored_and_verifies(capsys, berth_home, memory_keyring):
    ws = seed()
    rec = json.loads(sidecar(berth_home).read_text())
    assert rec["seq"] == 6 and rec["mac"] and rec["desktop"] == ws.anchor.desktop
    assert any(account.startswith("audit-anchor:") for _service, account in memory_keyring.passwords)
    assert "key" not in sidecar(berth_home).read_text() and rec["mac"] not in str(ws.db.execute(
        "select * from audit_meta").fetchall())  # the key is in the keyring only
    close(ws)
    r = berth(capsys, "audit", "verify")
    assert r.code == 0 and "intact: 6 events" in r.out and "anchor: matches event #6" in r.out, r
    assert "authenticated with the key in the keyring" in r.out


@pytest.mark.parametrize("attack", ["emptied", "deleted"])
def test_emptied_or_deleted_database_fails_against_the_anchor(capsys, berth_home, attack):
    close(seed())
    db = berth_home / "berth.sqlite"
    evidence = sidecar(berth_home).read_bytes()
    if attack == "emptied":
        db.write_bytes(b"")  # : > berth.sqlite
    else:
        db.unlink()
    r = berth(capsys, "audit", "verify")
    assert r.code == 1, r
    first = r.out.splitlines()[0]
    assert "the log ends at event 0, but the anchor from" in first and "says 6 events with head" in first
    assert "replaced or truncated" in first
    assert berth(capsys, "audit", "list").code == 0 and berth(capsys, "settings", "set",
                                                                 "require_reason_production", "true").code == 0
    assert sidecar(berth_home).read_bytes() == evidence  # later writes never overwrite the evidence
    assert berth(capsys, "audit", "verify").code == 1


@pytest.mark.parametrize("edit, expect", [
    (lambda rows: [dict(r, actor="mallory@elsewhere") for r in rows], "event #6 has hash"),
    (lambda rows: [r for r in rows if r["version"] != "1.2.0"], "the log ends at event 5"),
    (lambda rows: rows + [dict(rows[-1], id="f" * 32, actor="cto@hq", reason="approved")],
     "events #7–#7 come after the last anchored event (#6"),
])
def test_consistently_rewritten_chain_fails(capsys, berth_home, edit, expect):
    close(seed())
    evidence = sidecar(berth_home).read_bytes()
    attacker_rewrite(berth_home / "berth.sqlite", edit)
    r = berth(capsys, "audit", "verify", "--json")
    assert r.code == 1 and r.json()["chain_ok"] and not r.json()["anchor"]["ok"], r
    assert expect in r.json()["lines"][0]
    r = berth(capsys, "audit", "verify")
    assert r.code == 1 and expect in r.out.splitlines()[0]
    assert sidecar(berth_home).read_bytes() == evidence


def test_sidecar_deleted_edited_or_forged(capsys, berth_home, memory_keyring):
    close(seed())
    path = sidecar(berth_home)
    good = path.read_bytes()

    path.unlink()
    r = berth(capsys, "audit", "verify")
    assert r.code == 1 and "berth.anchor is missing: it was deleted" in r.out.splitlines()[0], r
    assert not path.exists()  # not silently made again: that would bless whatever the log is now

    rec = json.loads(good)
    path.write_text(json.dumps(dict(rec, seq=2, hash="ab" * 32)))  # the attacker's head, the old HMAC
    r = berth(capsys, "audit", "verify")
    assert r.code == 1 and "its HMAC does not match the key in the keyring" in r.out, r

    path.write_text(json.dumps(dict(rec, mac=None)))  # unauthenticated, as written without a keyring
    r = berth(capsys, "audit", "verify")
    assert r.code == 1 and "carries no authentication" in r.out, r

    path.write_bytes(good)
    assert berth(capsys, "audit", "verify").code == 0


def test_without_a_secure_keyring_the_anchor_works_but_says_it_is_unauthenticated(capsys, berth_home):
    import keyring
    import keyring.backends.fail

    keyring.set_keyring(keyring.backends.fail.Keyring())  # the memory_keyring fixture puts one back after
    close(seed())
    assert json.loads(sidecar(berth_home).read_text())["mac"] is None
    r = berth(capsys, "audit", "verify")
    assert r.code == 0 and "NOT authenticated: no secure keyring" in r.out, r
    (berth_home / "berth.sqlite").write_bytes(b"")
    r = berth(capsys, "audit", "verify")
    assert r.code == 1 and "the log ends at event 0" in r.out, r


def test_export_carries_the_chain_and_a_tampered_export_fails(capsys, berth_home, tmp_path):
    close(seed())
    full, part = tmp_path / "all.json", tmp_path / "v1.json"
    assert berth(capsys, "audit", "export", "-o", full).code == 0
    data = json.loads(full.read_text())
    assert data["head"]["seq"] == 6 and data["head"]["hash"] == data["events"][-1]["hash"]
    assert all({"seq", "prev_hash", "hash"} <= set(e) for e in data["events"])
    (berth_home / "berth.sqlite").unlink()  # the auditor has the file, not the database
    r = berth(capsys, "audit", "verify", "--file", full)
    assert r.code == 0 and "6 events; the whole log" in r.out, r

    def tampered(name, change):
        d = json.loads(full.read_text())
        change(d)
        (tmp_path / name).write_text(json.dumps(d))
        return berth(capsys, "audit", "verify", "--file", tmp_path / name)

    r = tampered("actor.json", lambda d: d["events"][2].update(actor="mallory@elsewhere"))
    assert r.code == 1 and "event #3" in r.out and "was changed" in r.out, r
    r = tampered("cut.json", lambda d: d["events"].pop(3))
    assert r.code == 1 and "events #4–#4 are missing" in r.out, r
    r = tampered("tail.json", lambda d: d["events"].pop())
    assert r.code == 1 and "events #6–#6 (up to the head it names) are missing" in r.out, r
    r = tampered("head.json", lambda d: d["head"].update(hash="cd" * 32))
    assert r.code == 1 and "is not the head it names" in r.out, r
    (tmp_path / "junk.json").write_text("{not json")
    r = berth(capsys, "audit", "verify", "--file", tmp_path / "junk.json")
    assert r.code == 1 and "not a Berth JSON export" in r.err and "Traceback" not in r.err, r

    Workspace()  # a filtered export of a new log: checked event by event, omissions named as unchecked
    seed(3)
    assert berth(capsys, "audit", "export", "--text", "1.1.0", "-o", part).code == 0
    r = berth(capsys, "audit", "verify", "--file", part)
    assert r.code == 0 and "1 events; a filtered export" in r.out and "cannot be checked" in r.out, r


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_one_line_and_can_be_rebuilt(capsys, berth_home, damage):
    ws = seed(400)
    close(ws)
    db = berth_home / "berth.sqlite"
    if damage == "garbage":
        db.write_bytes(b"this is not a database\n" * 500)
    else:
        raw = db.read_bytes()
        db.write_bytes(raw[:len(raw) // 3])
    before = db.read_bytes()
    for argv in (("audit", "verify"), ("status",)):
        r = berth(capsys, *argv)
        assert r.code == 1, (argv, r)
        assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err + r.out, r
        assert str(db) in r.err and "berth audit rebuild" in r.err and "restore it from a backup" in r.err, r
    assert db.read_bytes() == before  # nothing was written to it

    r = berth(capsys, "audit", "rebuild")
    assert r.code == 0 and "before-rebuild" in r.out, r
    kept = [p for p in berth_home.iterdir() if p.name.startswith("berth.sqlite.before-rebuild-")]
    assert [p.read_bytes() for p in kept if not p.name.endswith(("-wal", "-shm"))] == [before]
    r = berth(capsys, "audit", "verify")
    assert r.code == 0, r
    rebuilt = berth(capsys, "audit", "list", "--json").json()
    assert rebuilt[-1]["action"] == "audit.rebuild" and "the old anchor said 400 events" in rebuilt[-1]["detail"]


def test_an_outcome_written_after_a_lost_connection_is_pending_not_missing():
    """The agent journals the outcome under the id Berth gave it; when the connection broke, the
    local log holds `lost` instead until the next import: not yet imported, not deleted."""
    from app.agent import journal as server_journal
    from app.audit.sync import check_journal

    ws = seed(2)
    started = ws.audit.begin("deploy", server="box", model="iris", version="2.0.0")
    head = ws.audit.desktop_head()

    class Root:  # the agent's journal, in a folder of its own
        journal = str(ws.anchor.path.with_name("journal.jsonl"))

    actor = {"user": started.actor.split("@")[0], "host": started.actor.split("@")[1]}
    server_journal.append(Root, "deploy", "started", actor, started.id, model="iris", version="2.0.0",
                          desktop_head=head)
    server_journal.append(Root, "deploy", "ok", actor, "f" * 32, model="iris", version="2.0.0", ref=started.id)
    events = server_journal.read(Root)["events"]
    check = check_journal(ws.db.conn, "box", events, ws.anchor.desktop)
    assert not check.ok and "holds the outcome ffffffffffff" in check.problems[0] and "deleted" in check.problems[0]
    ws.audit.finish(started, "lost", detail="connection lost")
    check = check_journal(ws.db.conn, "box", events, ws.anchor.desktop)
    assert check.ok and check.pending == 1 and check.heads == 1 and "not imported yet" in check.message, check
    other = check_journal(ws.db.conn, "box", events, "another-desktop")
    assert other.ok and other.own == 0  # another desktop's events are not this log's to hold
    close(ws)


def test_a_log_rewritten_or_an_anchor_deleted_under_a_running_console_is_not_blessed(capsys, berth_home,
                                                                                      monkeypatch):
    """The console keeps appending while the attacker works: its next event must not re-anchor the
    rewritten log, nor make a deleted anchor again."""
    ws = seed()
    evidence = sidecar(berth_home).read_bytes()
    attacker_rewrite(berth_home / "berth.sqlite", lambda rows: [dict(r, actor="mallory@elsewhere") for r in rows])
    ws.audit.record("stop", "ok", server="alpha", model="iris")  # chained onto the attacker's head
    assert sidecar(berth_home).read_bytes() == evidence
    r = berth(capsys, "audit", "verify")
    assert r.code == 1 and "event #6 has hash" in r.out, r
    close(ws)

    other = berth_home / "second"
    other.mkdir()
    monkeypatch.setenv("BERTH_HOME", str(other))
    ws = seed(3)
    sidecar(other).unlink()
    ws.audit.record("stop", "ok", server="alpha", model="iris")
    assert not sidecar(other).exists()
    close(ws)


def test_two_processes_anchoring_in_turn_agree_and_the_record_only_moves_forward(capsys, berth_home):
    console, cli = seed(1), Workspace()  # each with its own connection and its own descriptor
    for i in range(5):
        console.audit.record("start", "ok", model=f"m{i}")
        cli.audit.record("stop", "ok", model=f"m{i}")
    first = console.db.execute("select hash from events where seq = 1").fetchone()[0]
    console.anchor.update(1, first, console.db.conn)  # a late writer with an older head
    assert json.loads(sidecar(berth_home).read_text())["seq"] == 11
    r = berth(capsys, "audit", "verify")
    assert r.code == 0 and "anchor: matches event #11" in r.out, r
    close(console)
    close(cli)
