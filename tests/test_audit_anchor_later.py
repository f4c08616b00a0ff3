"""The CLI's workspace attaches the audit anchor on first use (app/anchoring.py's LaterAnchor): a
read-only command reads no keyring, and the anchor's rules still hold, because the log is checked
against berth.anchor before the first event is written. Real SQLite files and the test keyring."""
import json

from app.workspace import Workspace
from cli_kit import berth
from test_audit_anchor import attacker_rewrite, close, seed, sidecar


def counted_reads(keyring, monkeypatch) -> list:
    reads = []
    real = keyring.get_password

    def get_password(service, username):
        reads.append(username)
        return real(service, username)

    monkeypatch.setattr(keyring, "get_password", get_password)
    return reads


def test_reading_needs_no_keyring_and_the_first_event_is_anchored_with_its_key(berth_home, memory_keyring,
                                                                                monkeypatch):
    close(seed(3))
    reads = counted_reads(memory_keyring, monkeypatch)
    ws = Workspace(anchor_later=True)
    assert [s.name for s in ws.servers.list()] == ["local"] and len(ws.audit.list()) == 3
    assert reads == []
    ws.audit.record("stop", "ok", server="alpha", model="iris")
    assert len(reads) == 1 and reads[0].startswith("audit-anchor:")
    rec = json.loads(sidecar(berth_home).read_text())
    assert rec["seq"] == 4 and rec["mac"] and rec["desktop"] == ws.anchor.desktop
    close(ws)


def test_a_log_rewritten_before_the_anchor_attaches_is_not_blessed(capsys, berth_home, memory_keyring):
    close(seed())
    ws = Workspace(anchor_later=True)  # opened (a CLI command started), nothing read from the anchor yet
    evidence = sidecar(berth_home).read_bytes()
    attacker_rewrite(berth_home / "berth.sqlite", lambda rows: [dict(r, actor="mallory@elsewhere") for r in rows])
    ws.audit.record("stop", "ok", server="alpha", model="iris")  # checked first: the anchor stays as evidence
    assert ws.anchor.frozen and sidecar(berth_home).read_bytes() == evidence
    close(ws)
    r = berth(capsys, "audit", "verify")
    assert r.code == 1 and "event #6 has hash" in r.out, r


def test_a_deleted_anchor_is_not_made_again_by_a_later_first_write(berth_home, memory_keyring):
    close(seed(2))
    ws = Workspace(anchor_later=True)
    sidecar(berth_home).unlink()
    ws.audit.record("stop", "ok", server="alpha", model="iris")
    assert not sidecar(berth_home).exists()
    close(ws)


def test_an_empty_log_gets_its_anchor_at_the_first_event_not_at_a_read(berth_home, memory_keyring):
    ws = Workspace(anchor_later=True)
    ws.audit.list()
    assert not sidecar(berth_home).exists() and memory_keyring.passwords == {}
    ws.audit.record("settings.change", "ok", detail="x")
    assert json.loads(sidecar(berth_home).read_text())["seq"] == 1
    assert any(account.startswith("audit-anchor:") for _service, account in memory_keyring.passwords)
    close(ws)
