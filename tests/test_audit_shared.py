"""The server's journal as shared truth: two Berth homes against one loopback sshd see the same
history, with no copies of their own events; an edited journal is reported; a Berth killed in the
middle of a deploy leaves an interrupted event that the journal later completes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_kit import stop_all
from app.audit.chain import verify
from app.audit.query import AuditFilter, query_events
from app.workspace import Workspace
from cli_kit import berth, break_model, iris_copy

REPO = Path(__file__).resolve().parent.parent


def use_home(monkeypatch, home: Path) -> None:
    monkeypatch.setenv("BERTH_HOME", str(home))


def server_events(home_events, action_prefix=("deploy", "rollback")):
    return {e["id"]: e for e in home_events if e["action"].startswith(action_prefix)}


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "shared root"
    yield path
    stop_all(path)


def test_two_desktops_share_one_servers_history(capsys, sshd, root, tmp_path, monkeypatch):
    homes = {"a": tmp_path / "home-a", "b": tmp_path / "home-b"}
    for who, name in (("a", "box"), ("b", "shared")):
        use_home(monkeypatch, homes[who])
        r = berth(capsys, "server", "add", name, "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
                  "--key", sshd.key_path, "--root", str(root), "--accept-host-key", sshd.fingerprint)
        assert r.code == 0, r

    use_home(monkeypatch, homes["a"])
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "box").code == 0
    assert berth(capsys, "deploy", break_model(iris_copy(tmp_path, "2.0.0")), "--server", "box").code == 1

    use_home(monkeypatch, homes["b"])
    r = berth(capsys, "audit", "sync", "--server", "shared")
    assert r.code == 0 and "4 new of 4" in r.out, r
    r = berth(capsys, "deploy", iris_copy(tmp_path, "1.1.0"), "--server", "shared", "--reason", "B's fix")
    assert r.code == 0, r
    assert "0 new of" in berth(capsys, "audit", "sync", "--server", "shared").out  # its own: no copies
    b_events = berth(capsys, "audit", "list", "--json").json()

    use_home(monkeypatch, homes["a"])
    assert berth(capsys, "status", "--server", "box").code == 0  # a refresh imports what is new
    a_events = berth(capsys, "audit", "list", "--json").json()

    a_server, b_server = server_events(a_events), server_events(b_events)
    assert set(a_server) == set(b_server) and len(a_server) == 6  # 3 deploys, each started + outcome
    for event_id, a in a_server.items():
        b = b_server[event_id]
        assert {k: a[k] for k in ("action", "outcome", "version", "ref")} == \
               {k: b[k] for k in ("action", "outcome", "version", "ref")}
    imported_in_a = [e for e in a_events if e["origin"] == "server:box"]
    assert [(e["version"], e["outcome"]) for e in reversed(imported_in_a)] == [("1.1.0", "started"), ("1.1.0", "ok")]
    assert imported_in_a[0]["reason"] == "B's fix" and imported_in_a[0]["server"] == "box"
    assert (imported_in_a[0]["old"], imported_in_a[0]["new"]) == ("1.0.0", "1.1.0")
    assert [e for e in a_events if e["origin"] == "server:box" and e["version"] != "1.1.0"] == []
    for home in homes.values():
        use_home(monkeypatch, home)
        assert berth(capsys, "audit", "verify").code == 0

    # someone edits the server's journal: the next import says so, once, and names the line
    journal = root / "journal.jsonl"
    lines = journal.read_text().splitlines()
    second = json.loads(lines[1])
    second["detail"] = "nothing happened here"
    lines[1] = json.dumps(second, sort_keys=True)
    journal.write_text("\n".join(lines) + "\n")
    use_home(monkeypatch, tmp_path / "home-c")
    assert berth(capsys, "server", "add", "c", "--host", sshd.host, "--port", sshd.port, "--user", sshd.user,
                 "--key", sshd.key_path, "--root", str(root), "--accept-host-key", sshd.fingerprint).code == 0
    r = berth(capsys, "audit", "sync", "--server", "c")
    assert r.code == 0 and "journal event #2 was changed" in r.out, r
    berth(capsys, "audit", "sync", "--server", "c")
    problems = berth(capsys, "audit", "list", "--action", "journal.verify", "--json").json()
    assert len(problems) == 1 and problems[0]["outcome"] == "failed" and "#2" in problems[0]["detail"]


def slow_iris(tmp_path: Path, version: str) -> Path:
    """Its model takes 4 s to import, so the deploy is still running when Berth is killed."""
    folder = iris_copy(tmp_path, version)
    model = folder / "model.py"
    model.write_text("import time\ntime.sleep(4)\n" + model.read_text())
    return folder


def journal_has(journal: Path, event_id: str) -> bool:
    """True once the server's journal holds the event `event_id` (a line being written is skipped)."""
    try:
        lines = journal.read_text().splitlines()
    except FileNotFoundError:
        return False
    for line in lines:
        try:
            if json.loads(line).get("id") == event_id:
                return True
        except ValueError:
            continue
    return False


def test_berth_killed_mid_deploy_leaves_interrupted_then_the_journal_completes_it(capsys, tmp_path, stop_local_runners):
    assert berth(capsys, "deploy", iris_copy(tmp_path), "--server", "local").code == 0
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "app", "deploy", str(slow_iris(tmp_path, "2.0.0")),
                             "--server", "local"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    ws = Workspace()
    deadline = time.monotonic() + 60
    started = []
    while not started and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        started = query_events(ws.db, AuditFilter(action="deploy", outcome="started", text="2.0.0"))
    assert started, proc.stderr.read().decode() if proc.poll() is not None else "no started event"
    journal = Path(ws.servers.get("local").root) / "journal.jsonl"
    deadline = time.monotonic() + 60  # until the agent has journalled the deploy under Berth's id:
    while not journal_has(journal, started[0]["id"]) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # from then on it builds and health-checks 2.0.0 whatever happens to Berth
    assert journal_has(journal, started[0]["id"]), "the agent never started the deploy"
    os.kill(proc.pid, signal.SIGKILL)  # Berth only: the agent it started carries on
    proc.wait(10)
    proc.stderr.close()

    row = query_events(ws.db, AuditFilter(text="2.0.0"))[0]
    assert (row["outcome"], row["state"]) == ("started", "interrupted")
    r = berth(capsys, "audit", "list", "--outcome", "interrupted")
    assert r.code == 0 and "interrupted" in r.out and "2.0.0" in r.out

    # the agent finishes on its own and journals the outcome with the id Berth gave it
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        outcomes = [json.loads(line) for line in journal.read_text().splitlines()]
        if any(e.get("ref") == row["id"] and e["outcome"] != "started" for e in outcomes):
            break
        time.sleep(0.2)
    assert berth(capsys, "status", "--server", "local").code == 0  # the import on refresh
    after = query_events(ws.db, AuditFilter(text="2.0.0"))
    outcome = next(e for e in after if e["ref"] == row["id"])
    assert outcome["outcome"] in ("ok", "failed") and outcome["origin"] == "server:local"
    assert next(e for e in after if e["id"] == row["id"])["state"] == "started"  # no longer interrupted
    assert verify(ws.db.conn).ok
    current = berth(capsys, "status", "--server", "local", "--json").json()
    assert len(current) == 1 and current[0]["version"] in ("1.0.0", "2.0.0")  # one consistent current
