"""A stuck agent holding the server lock: seen for what it is, broken only after the operator names
it (its pid), only if it is a Berth agent, and the break is journalled and audited."""
import fcntl
import json
import subprocess
import sys

import pytest

from agent_kit import call
from app.deploy.changes import break_lock, lock_state
from app.deploy.errors import OperationFailed
from app.remote.local import LocalTransport
from app.workspace import Workspace

HOLDER = """
import os, sys, time
sys.path.insert(0, {repo!r})
from app.agent.lock import ServerLock
with ServerLock({lock!r}, {{"who": "alice@laptop", "what": "deploy iris 2.0.0"}}):
    print("held", flush=True)
    for line in sys.stdin:  # an answer proves it runs: a signal sent before would have ended it
        print("alive", flush=True)
"""


def hold_lock(tmp_path, root, name="agent.py"):
    """A real process holding the real flock, named like the agent (or not)."""
    (root / ".berth").mkdir(parents=True, exist_ok=True)
    script = tmp_path / name
    repo = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
    script.write_text(HOLDER.format(repo=repo, lock=str(root / ".berth" / "lock")))
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"held"
    return proc


def end(proc):
    """Kill the holder (if it still runs), reap it and close its pipes."""
    proc.kill()
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()


def test_a_held_lock_is_shown_and_broken_after_confirmation(tmp_path):
    root = tmp_path / "root"
    proc = hold_lock(tmp_path, root)
    try:
        state, _, _ = call(root, "status")
        lock = state["lock"]
        assert lock["held"] and lock["holder_alive"] and lock["holder"]["pid"] == proc.pid
        assert lock["holder"]["what"] == "deploy iris 2.0.0"
        _, error, _ = call(root, "rollback", model="iris")
        assert error["code"] == "locked" and "alice@laptop" in error["message"]

        _, error, _ = call(root, "unlock", pid=proc.pid + 100000)  # not the one the operator saw
        assert error["code"] == "lock_changed" and proc.poll() is None

        ws = Workspace()
        with LocalTransport(str(root)) as t:
            result = break_lock(t, ws.audit, proc.pid, reason="agent hung in pip for an hour")
            assert result["broken"] and "alice@laptop" in result["detail"]
            assert not lock_state(t)["held"]
        assert proc.wait(15) is not None
        journal = [json.loads(l) for l in (root / "journal.jsonl").read_text().splitlines()]
        assert journal[-1]["action"] == "lock.break" and journal[-1]["reason"] == "agent hung in pip for an hour"
        events = ws.audit.list(limit=2)
        assert [(e["action"], e["outcome"]) for e in events] == [("lock.break", "ok"), ("lock.break", "started")]
        assert journal[-1]["id"] == events[0]["id"]  # the journal names it as the desktop does
        with open(root / ".berth" / "lock", "a+") as fd:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free for the next change
    finally:
        end(proc)


def test_a_process_that_is_not_an_agent_is_never_killed(tmp_path):
    root = tmp_path / "root"
    proc = hold_lock(tmp_path, root, name="something_else.py")
    try:
        _, error, _ = call(root, "unlock", pid=proc.pid)
        assert error["code"] == "not_agent"
        proc.stdin.write(b"ping\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"alive\n"  # it ran after the refusal: no signal was sent
        assert proc.poll() is None
        with LocalTransport(str(root)) as t:
            with pytest.raises(OperationFailed, match="not a Berth agent"):
                break_lock(t, Workspace().audit, proc.pid)
    finally:
        end(proc)


def test_a_killed_agent_leaves_no_held_lock(tmp_path):
    root = tmp_path / "root"
    proc = hold_lock(tmp_path, root)
    end(proc)
    lock = call(root, "status")[0]["lock"]
    assert not lock["held"] and lock["holder"]["pid"] == proc.pid  # what it left, released by the system
    result, _, _ = call(root, "unlock", pid=proc.pid)
    assert result == {"broken": False, "detail": "the server was not locked (nothing to do)"}


def test_cli_shows_the_holder_and_needs_a_confirmation(capsys, tmp_path, berth_home):
    from cli_kit import berth

    proc = hold_lock(tmp_path, berth_home / "local")
    try:
        r = berth(capsys, "server", "unlock", "local")  # no terminal, no --yes: nothing is ended
        assert r.code == 1 and "without a confirmation" in r.err
        assert "locked by alice@laptop running 'deploy iris 2.0.0'" in r.out and "alive" in r.out
        assert proc.poll() is None
        r = berth(capsys, "server", "unlock", "local", "--yes", "--reason", "hung")
        assert r.code == 0 and f"ended pid {proc.pid}" in r.out, r
        assert proc.wait(15) is not None
        r = berth(capsys, "server", "unlock", "local")
        assert r.code == 0 and "not locked" in r.out
        r = berth(capsys, "server", "activity", "local", "--json")
        commands = [row["command"] for row in r.json()]
        assert commands[:2] == ["status", "unlock"] and "status" in commands[2:]
    finally:
        end(proc)
