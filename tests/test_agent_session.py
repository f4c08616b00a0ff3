"""One long-lived agent per connection (app/agent/session.py, app/remote/agent_session.py): many
commands from many threads over one process, answers never mixed, a long deploy never blocking a
status, a killed session replaced without re-sending a change, cancelling journalled as cancelled."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from agent_kit import ACTOR, deploy_request, stop_all
from app.agent import lock
from app.agent.layout import AgentError
from app.remote import agent_install
from app.remote.errors import RemoteError
from app.remote.local import LocalTransport
from session_kit import echo_bundle, journal, session_pids, slow_bundle, wait_for


@pytest.fixture
def local(tmp_path):
    """A LocalTransport on a fresh root, with the session on (it is off for local by default)."""
    root = tmp_path / "root"
    t = LocalTransport(str(root))
    t.use_session = True
    yield t, root
    t.close()
    stop_all(root)
    wait_for(lambda: not session_pids(root), 15, "the session to end with its stdin")


def deploy(t, root, folder, on_event=None):
    return t.agent("deploy", dict(deploy_request(root, folder), actor=ACTOR), on_event)


def answers_from_threads(t, threads=6, calls=8):
    """Each thread asks `hello` about hashes of its own; what comes back must be its own."""
    seen, errors = {}, []

    def ask(n):
        try:
            for i in range(calls):
                mine = ["%064x" % (n * 1000 + i)]
                info = t.agent("hello", {"hashes": mine})
                assert info["missing"] == mine, (n, i, info["missing"])
                seen.setdefault(n, 0)
                seen[n] += 1
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=ask, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors, errors[0]
    assert seen == {n: calls for n in range(threads)}


def test_many_threads_share_one_session_and_get_their_own_answers(local):
    t, root = local
    answers_from_threads(t)
    assert len(session_pids(root)) == 1  # one process answered all 48


def test_a_status_answers_while_a_deploy_runs(local, tmp_path):
    t, root = local
    folder = slow_bundle(tmp_path / "slow", "1.0.0", delay=3)
    steps, result = [], {}
    worker = threading.Thread(target=lambda: result.update(deploy(t, root, folder, steps.append)))
    worker.start()
    wait_for(lambda: any(s.get("step") == "start" for s in steps), 30, "the deploy to start its runner")
    started = time.monotonic()
    status = t.agent("status")
    assert time.monotonic() - started < 1.0  # not behind the deploy's 3 s
    assert status["lock"]["held"] and status["lock"]["holder"]["what"] == "deploy echo 1.0.0"
    worker.join(60)
    assert result["version"] == "1.0.0"


def test_a_killed_session_fails_the_change_in_flight_and_the_next_call_starts_a_new_one(local, tmp_path):
    t, root = local
    t.agent("hello")
    first = session_pids(root)
    assert len(first) == 1
    folder = slow_bundle(tmp_path / "slow", "1.0.0", delay=5)
    steps, failure = [], []

    def run():
        try:
            deploy(t, root, folder, steps.append)
        except RemoteError as e:
            failure.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    wait_for(lambda: any(s.get("step") == "start" for s in steps), 30, "the deploy to start its runner")
    os.kill(first[0], signal.SIGKILL)
    worker.join(30)
    assert failure and failure[0].code == "agent_killed", failure
    assert "journal" in str(failure[0])
    assert [e["outcome"] for e in journal(root) if e["action"] == "deploy"] == ["started"]  # not sent again
    assert t.agent("status")["lock"]["held"] is False  # a new session, and the kernel freed the flock
    assert session_pids(root) and session_pids(root) != first


def test_a_read_only_command_in_flight_is_asked_again_on_a_new_session(local):
    t, root = local
    t.agent("hello")
    pid = session_pids(root)[0]
    os.kill(pid, signal.SIGSTOP)  # the request reaches it, but no answer comes
    answer = []
    worker = threading.Thread(target=lambda: answer.append(t.agent("hello")))
    worker.start()
    time.sleep(0.3)
    assert worker.is_alive()  # in flight
    os.kill(pid, signal.SIGKILL)
    worker.join(30)
    assert answer and answer[0]["root"] == str(root)
    assert session_pids(root) and pid not in session_pids(root)


def test_closing_the_session_cancels_the_deploy_and_the_journal_says_so(local, tmp_path):
    t, root = local
    deploy(t, root, echo_bundle(tmp_path / "v1", "1.0.0"))
    folder = slow_bundle(tmp_path / "slow", "2.0.0", delay=2)
    steps, failure = [], []

    def run():
        try:
            deploy(t, root, folder, steps.append)
        except RemoteError as e:
            failure.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    wait_for(lambda: any(s.get("step") == "start" for s in steps), 30, "the deploy to start its runner")
    t.end_session()  # what closing the connection does: the session's stdin ends
    worker.join(30)
    assert failure and failure[0].code == "cancelled", failure
    outcomes = [(e["version"], e["outcome"]) for e in journal(root) if e["action"] == "deploy"]
    assert outcomes[-2:] == [("2.0.0", "started"), ("2.0.0", "failed")]
    assert "cancelled" in journal(root)[-1]["detail"]
    assert os.readlink(root / "models/echo/current") == "releases/1.0.0"
    assert t.agent("status")["lock"]["held"] is False  # the next call opens a new session


def test_a_caller_that_stops_waiting_cancels_its_request_on_the_server(local, tmp_path):
    t, root = local
    folder = slow_bundle(tmp_path / "slow", "1.0.0", delay=2)

    class Stop(Exception):
        pass

    def stop_at_start(event):
        if event.get("step") == "start":
            raise Stop()  # the console's worker giving up (a closed window, Ctrl-C)

    with pytest.raises(Stop):
        deploy(t, root, folder, stop_at_start)
    wait_for(lambda: [e for e in journal(root) if e["outcome"] == "failed"], 30, "the failed line")
    assert "cancelled" in journal(root)[-1]["detail"]
    assert not (root / "models/echo/current").exists()
    assert t.agent("status")["lock"]["held"] is False  # the same session goes on


def test_a_silent_command_times_out_and_the_session_stays_usable(local, tmp_path):
    t, root = local
    t.command_timeout = 1.0
    pid = (t.agent("hello"), session_pids(root))[1]
    with pytest.raises(RemoteError) as e:
        deploy(t, root, slow_bundle(tmp_path / "slow", "1.0.0", delay=3))
    assert e.value.code == "connection_lost" and "sent nothing for 1 s" in str(e.value)
    assert t.agent("hello")["root"] == str(root) and session_pids(root) == pid
    wait_for(lambda: [e for e in journal(root) if e["outcome"] == "failed"], 30, "the cancel to be journalled")


def test_an_agent_found_modified_is_replaced_before_the_session_starts(local):
    t, root = local
    replaced = []
    t.on_agent_replaced = replaced.append
    t.agent("hello")
    t.end_session()
    wait_for(lambda: not session_pids(root), 15, "the first session to end")
    launcher = t.ensure_agent()
    with open(os.path.join(os.path.dirname(launcher), "berth_agent", "queries.py"), "a") as f:
        f.write("\nraise SystemExit('pwned')\n")
    assert t.agent("hello")["root"] == str(root)
    assert len(replaced) == 1 and "was modified" in replaced[0]


@pytest.mark.parametrize("tamper", ["content", "mode", "bytecode"])
def test_an_agent_modified_while_its_session_runs_is_refused_then_replaced(local, tamper):
    """The bootstrap checks the files once per session; the session checks them again before each
    request (runners it starts import them from disk), so a change mid-connection is caught too."""
    t, root = local
    replaced = []
    t.on_agent_replaced = replaced.append
    t.agent("hello")
    first = session_pids(root)
    package = os.path.join(os.path.dirname(t.ensure_agent()), "berth_agent")
    target = os.path.join(package, "runner.py")
    if tamper == "content":
        with open(target, "a") as f:
            f.write("\nimport os; os.system('touch /tmp/pwned')\n")
    elif tamper == "mode":
        os.chmod(target, 0o666)
    else:
        os.makedirs(os.path.join(package, "__pycache__"), exist_ok=True)
        open(os.path.join(package, "__pycache__", "runner.cpython-311.pyc"), "wb").close()
    assert t.agent("status")["models"] == []
    assert len(replaced) == 1 and "was modified" in replaced[0], replaced
    wait_for(lambda: session_pids(root) and session_pids(root) != first, 15, "a session on the new agent")
    with open(target, "rb") as f:
        assert b"pwned" not in f.read()
    assert oct(os.stat(target).st_mode & 0o777) == "0o600"


def test_the_server_lock_excludes_another_thread_of_the_same_process(tmp_path):
    path = str(tmp_path / "lock")
    inside, release, outcome = threading.Event(), threading.Event(), []

    def hold():
        with lock.ServerLock(path, {"who": "a@x", "what": "deploy"}):
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    try:
        with lock.ServerLock(path, {"who": "b@y", "what": "rollback"}):
            outcome.append("taken")
    except AgentError as e:
        outcome.append(e.code)
    assert lock.inspect(path)["held"] and holder.ident in lock.holding_threads()
    release.set()
    holder.join(10)
    assert outcome == ["locked"]
    assert not lock.inspect(path)["held"] and not lock.holding_threads()


# -- the agent's side of the protocol, spoken by hand ---------------------------------------------

def raw_session(root):
    """`python3 -I -B -c BOOTSTRAP agent.py digest session` on a fresh local root."""
    t = LocalTransport(str(root))
    argv = agent_install.agent_argv(t.ensure_agent(), "session")
    proc = subprocess.Popen([sys.executable, *argv[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    hello = json.loads(proc.stdout.readline())
    assert hello["event"] == "session" and hello["pid"] == proc.pid
    return proc


def say(proc, line: str) -> dict:
    proc.stdin.write(line.encode() + b"\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


@pytest.mark.parametrize("line, code, where", [
    ("not json", "usage", "bad session line"),
    ('{"command": "status"}', "usage", "bad session line"),
    ('{"id": true, "command": "status"}', "usage", "id must be a number"),
    ('{"id": 1, "command": "rm -rf"}', "usage", "unknown session command"),
    ('{"id": 2, "command": "sample", "request": {}}', "usage", "the stream of samples is `sample_stream`"),
    ('{"id": 3, "command": "status", "request": []}', "usage", "JSON object with a 'root'"),
    ('{"id": 4, "command": "status"}', "usage", "JSON object with a 'root'"),
])
def test_a_bad_line_gets_an_error_and_the_session_goes_on(tmp_path, line, code, where):
    root = tmp_path / "root"
    proc = raw_session(root)
    try:
        error = say(proc, line)
        assert error["event"] == "error" and error["code"] == code and where in error["message"], error
        ok = say(proc, json.dumps({"id": 9, "command": "status", "request": {"root": str(root)}}))
        assert ok["event"] == "result" and ok["id"] == 9
    finally:
        proc.stdin.close()
        assert proc.wait(10) == 0
        proc.stdout.close()


def test_sigterm_cancels_only_the_request_holding_the_lock(tmp_path):
    """What `unlock` sends the holder: that request ends (journalled), the session goes on."""
    root = tmp_path / "root"
    proc = raw_session(root)
    try:
        folder = slow_bundle(tmp_path / "slow", "1.0.0", delay=3)
        request = dict(deploy_request(root, folder), actor=ACTOR, root=str(root))
        proc.stdin.write(json.dumps({"id": 1, "command": "deploy", "request": request}).encode() + b"\n")
        proc.stdin.flush()
        while json.loads(proc.stdout.readline()).get("step") != "start":
            pass
        proc.send_signal(signal.SIGTERM)
        while (event := json.loads(proc.stdout.readline()))["event"] not in ("result", "error"):
            pass
        assert event["id"] == 1 and event["code"] == "cancelled", event
        ok = say(proc, json.dumps({"id": 2, "command": "status", "request": {"root": str(root)}}))
        assert ok["event"] == "result" and ok["result"]["lock"]["held"] is False
    finally:
        proc.stdin.close()
        assert proc.wait(10) == 0
        proc.stdout.close()
        stop_all(root)


def test_the_activity_log_keeps_one_line_per_command_with_the_one_shot_by_hand_command(local):
    t, root = local
    lines = []
    t.on_activity = lines.append
    t.agent("status")
    t.agent("releases", {"model": "nope"})
    assert [(a.command, a.outcome) for a in lines] == [("status", "ok"), ("releases", "ok")]
    by_hand = lines[0].by_hand.replace("python3 ", sys.executable + " ", 1)
    assert "session" not in by_hand and " status <<'BERTH_REQUEST'" in by_hand
    done = subprocess.run(["bash", "-c", by_hand], capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout.splitlines()[-1])["event"] == "result"  # it works, typed by hand


def test_unlock_from_the_same_session_cancels_the_holding_request_and_the_session_lives(tmp_path):
    """`unlock` of a pid that is this very session: SIGTERM cancels the holder, never SIGKILL."""
    root = tmp_path / "root"
    proc = raw_session(root)
    try:
        folder = slow_bundle(tmp_path / "slow", "1.0.0", delay=3)
        request = dict(deploy_request(root, folder), actor=ACTOR, root=str(root))
        proc.stdin.write(json.dumps({"id": 1, "command": "deploy", "request": request}).encode() + b"\n")
        proc.stdin.flush()
        while json.loads(proc.stdout.readline()).get("step") != "start":
            pass
        unlock = {"root": str(root), "pid": proc.pid, "actor": ACTOR, "reason": "stuck"}
        proc.stdin.write(json.dumps({"id": 2, "command": "unlock", "request": unlock}).encode() + b"\n")
        proc.stdin.flush()
        finals = {}
        while len(finals) < 2:
            event = json.loads(proc.stdout.readline())
            if event["event"] in ("result", "error"):
                finals[event["id"]] = event
        assert finals[1]["event"] == "error" and finals[1]["code"] == "cancelled", finals[1]
        assert finals[2]["event"] == "result" and finals[2]["result"]["broken"] is True, finals[2]
        assert proc.poll() is None  # the session lives on
        assert [e["action"] for e in journal(root)][-1] == "lock.break"
    finally:
        proc.stdin.close()
        assert proc.wait(10) == 0
        proc.stdout.close()
        stop_all(root)
