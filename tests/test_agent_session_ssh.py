"""The agent session over a real OpenSSH sshd (tests/sshd.py): one exec channel and one agent
process for many commands from many threads; a status answering during a deploy; a killed session
replaced on the next call without re-sending the change that was in flight."""
import os
import signal
import threading
import time

from app.remote.errors import RemoteError
from app.workspace import Workspace
from session_kit import journal, session_pids, slow_bundle, wait_for
from test_agent_session import answers_from_threads, deploy


def test_many_threads_share_one_session_over_ssh(box):
    _srv, root = box
    with Workspace().connect("box") as t:
        assert t.use_session
        # first one call: the agent's install check (SFTP) on a fresh connection is not yet safe
        # from several threads at once (the SFTP locks and ensure_agent's lock come in another branch)
        t.agent("hello")
        answers_from_threads(t, threads=4, calls=10)
        assert len(session_pids(root)) == 1
        started = time.monotonic()
        for _ in range(20):
            t.agent("status")
        per_command = (time.monotonic() - started) / 20
        assert per_command < 0.1, per_command  # a line on a pipe, not a channel and a python each
    wait_for(lambda: not session_pids(root), 15, "the session to end with the connection")


def test_a_status_answers_promptly_while_a_deploy_runs_over_ssh(box, tmp_path):
    _srv, root = box
    with Workspace().connect("box") as t:
        folder = slow_bundle(tmp_path / "slow", "1.0.0", delay=3)
        steps, result = [], {}
        worker = threading.Thread(target=lambda: result.update(deploy(t, root, folder, steps.append)))
        worker.start()
        wait_for(lambda: any(s.get("step") == "start" for s in steps), 60, "the deploy to start its runner")
        started = time.monotonic()
        status = t.agent("status")
        assert time.monotonic() - started < 1.0
        assert status["lock"]["held"] and len(session_pids(root)) == 1
        worker.join(60)
        assert result["version"] == "1.0.0"


def test_a_killed_session_over_ssh_fails_the_deploy_and_a_new_one_serves_the_next_call(box, tmp_path):
    _srv, root = box
    with Workspace().connect("box") as t:
        t.agent("hello")
        first = session_pids(root)
        folder = slow_bundle(tmp_path / "slow", "1.0.0", delay=5)
        steps, failure = [], []

        def run():
            try:
                deploy(t, root, folder, steps.append)
            except RemoteError as e:
                failure.append(e)

        worker = threading.Thread(target=run)
        worker.start()
        wait_for(lambda: any(s.get("step") == "start" for s in steps), 60, "the deploy to start its runner")
        os.kill(first[0], signal.SIGKILL)  # `kill -9` of the session's python
        worker.join(30)
        assert failure and failure[0].code == "agent_killed", failure
        assert [e["outcome"] for e in journal(root) if e["action"] == "deploy"] == ["started"]
        assert t.agent("status")["lock"]["held"] is False and t.connected()
        assert session_pids(root) and session_pids(root) != first


def test_a_cut_connection_fails_the_deploy_as_connection_lost_and_cancels_it(box, tmp_path):
    srv, root = box
    import psutil

    with Workspace().connect("box") as t:
        folder = slow_bundle(tmp_path / "slow", "1.0.0", delay=2)
        steps, failure = [], []

        def run():
            try:
                deploy(t, root, folder, steps.append)
            except RemoteError as e:
                failure.append(e)

        worker = threading.Thread(target=run)
        worker.start()
        wait_for(lambda: any(s.get("step") == "start" for s in steps), 60, "the deploy to start its runner")
        for child in psutil.Process(srv.proc.pid).children(recursive=True):
            if child.name().startswith("sshd"):
                child.kill()  # sshd's side of the connection dies; the agent (its runner too) lives on
        worker.join(30)
        assert failure and failure[0].code in ("connection_lost", "agent_killed"), failure
    wait_for(lambda: [e for e in journal(root) if e["outcome"] == "failed"], 30, "the cancel to be journalled")
    assert "cancelled" in journal(root)[-1]["detail"]
    assert not (root / "models/echo/current").exists()


def test_a_closed_connection_is_not_kept_alive_by_the_shared_reader(box):
    """The shared reader watches a session until its channel ends, a moment after close(): in that
    moment it must not hold the transport, nor through its callbacks the workspace and its SQLite
    connections (a test that then replaced the database file met "disk I/O error")."""
    import gc
    import weakref

    ws = Workspace()
    t = ws.connect("box")
    t.agent("status")
    gone = weakref.ref(t), weakref.ref(ws)
    t.close()
    del t, ws
    gc.collect()
    assert [r() for r in gone] == [None, None]
