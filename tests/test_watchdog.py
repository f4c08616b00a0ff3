"""The runner watchdog (app/agent/watchdog.py, a thread of the scheduler process): a killed runner
comes back by itself on the same stable port, connections made meanwhile wait instead of being
refused, a model the operator stopped stays stopped, and a release that crashes at every start ends
in "gave up" instead of spinning. Real runners, a real scheduler process."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest

from agent_kit import call, deploy, http_json, make_bundle, stop_all, wait_guarded
from app.agent import crashloop, endpoint, scheduler
from app.agent.layout import Root

BACK_WITHIN_S = 5.0  # from SIGKILL to the port answering again (measured: docs/serving.md)

CRASHY = '''
import os

class Model:
    def __init__(self):
        if os.path.exists({flag!r}):
            raise SystemExit("the model cannot load: " + {flag!r})
        self.version = "1.0.0"

    def predict(self, data):
        return {{"version": self.version, "echo": data}}
'''


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    yield r
    stop_all(r)


def status_of(root, model="echo"):
    result, error, _ = call(root, "status")
    assert error is None, error
    return {s["model"]: s for s in result["models"]}.get(model)


def journal(root):
    return [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines()]


def _gone(pid):
    """No process, or a zombie (dead, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_a_killed_runner_is_back_on_its_port_and_queued_requests_are_answered(root, tmp_path):
    assert deploy(root, make_bundle(tmp_path / "v1"))[1] is None
    st = status_of(root)
    port, pid = st["port"], st["pid"]
    assert scheduler.alive(Root(str(root)))  # the deploy started the scheduler, whose watchdog this is
    wait_guarded(root)  # its copy of the listening socket, taken at its first tick after the start
    assert os.path.exists(endpoint.keeper_file(Root(str(root)).meta))  # asked on the watchdog's control socket

    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    # the kill lands a moment later: a connection the runner accepted in that moment is reset with
    # it, so the question is asked once it is gone
    assert wait_for(lambda: _gone(pid))
    # asked while nothing runs: the kernel queues it on the socket the watchdog kept, not refused
    code, body = http_json(port, "POST", "/predict", {"x": 2})
    took = time.monotonic() - killed
    assert code == 200 and body["echo"] == {"x": 2}
    print(f"SIGKILL to the first answer on port {port}: {took * 1000:.0f} ms")
    assert took < BACK_WITHIN_S
    # it answers once the new runner serves; the watchdog writes its history and journal just after
    assert wait_for(lambda: (status_of(root).get("watchdog") or {}).get("restarts") == 1)
    st = status_of(root)
    assert st["state"] == "running" and st["port"] == port and st["pid"] != pid
    # started by the agent, not by the watchdog: how it ended is not known to the watchdog
    assert st["watchdog"]["restarts"] == 1 and st["watchdog"]["last_status"].startswith("exit status unknown")
    assert wait_for(lambda: [e for e in journal(root) if e["action"] == "runner.restarted"])
    events = [e for e in journal(root) if e["action"] == "runner.restarted"]
    assert len(events) == 1 and events[0]["outcome"] == "ok" and events[0]["old_pid"] == pid
    assert events[0]["pid"] == st["pid"] and events[0]["port"] == port
    assert events[0]["actor"]["user"] == "berth-watchdog"
    log = (root / "models/echo/logs/1.0.0.log").read_text()
    assert f"runner pid {pid} " in log and log.count("starting echo 1.0.0") == 2  # the crash's lines stay

    # killed again, it was the watchdog's own child: its exit status is known
    wait_guarded(root)
    os.kill(st["pid"], signal.SIGKILL)
    assert http_json(port, "GET", "/health")[0] == 200
    assert wait_for(lambda: len([e for e in journal(root) if e["action"] == "runner.restarted"]) == 2)
    assert status_of(root)["watchdog"]["restarts"] == 2
    last = [e for e in journal(root) if e["action"] == "runner.restarted"][-1]
    assert last["status"] == "killed by signal 9 (SIGKILL)"


def test_a_model_stopped_by_the_operator_is_not_restarted(root, tmp_path):
    assert deploy(root, make_bundle(tmp_path / "v1"))[1] is None
    port = status_of(root)["port"]
    time.sleep(0.3)
    assert call(root, "stop", model="echo")[1] is None
    assert refused(port)  # the watchdog's copy went with the stop
    time.sleep(1.0)  # ten ticks
    st = status_of(root)
    assert st["state"] == "stopped" and refused(port) and "watchdog" not in st
    assert not [e for e in journal(root) if e["action"] == "runner.restarted"]
    # nothing left to watch: the scheduler ends by itself
    assert wait_for(lambda: not scheduler.alive(Root(str(root))), timeout=6)
    assert call(root, "start", model="echo")[1] is None
    assert status_of(root)["port"] == port and scheduler.alive(Root(str(root)))


def test_a_scheduler_started_while_the_last_one_ends_waits_for_its_lock_and_serves(root, tmp_path):
    """One that decided to end (its pid file gone) keeps the root's lock while its threads stop. A
    model started in that moment gets a new scheduler, which must wait for the lock, not leave at
    once and the model unwatched (seen in CI: right after `start`, no scheduler served the root)."""
    import fcntl

    assert deploy(root, make_bundle(tmp_path / "v1"))[1] is None
    r = Root(str(root))
    assert scheduler.stop(r) and not scheduler.alive(r)
    lock = os.open(scheduler.files(r)[1], os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)  # what the ending scheduler holds
    threading.Timer(1.0, os.close, [lock]).start()  # and gives up a second later, as it exits
    pid, started = scheduler.ensure(r)
    assert started and scheduler.alive(r) == pid
    st = status_of(root)
    wait_guarded(root)
    os.kill(st["pid"], signal.SIGKILL)
    assert http_json(st["port"], "GET", "/health")[0] == 200  # the new scheduler's watchdog brought it back
    assert wait_for(lambda: [e for e in journal(root) if e["action"] == "runner.restarted"])


def test_a_release_that_crashes_at_every_start_ends_in_gave_up(root, tmp_path):
    flag = tmp_path / "broken"
    assert deploy(root, make_bundle(tmp_path / "v1", model_src=CRASHY.format(flag=str(flag))))[1] is None
    st = status_of(root)
    port = st["port"]
    flag.write_text("from now on the model does not load")
    os.kill(st["pid"], signal.SIGKILL)
    started = time.monotonic()
    # backoff 0 + 1 + 2 + 4 s between the tries, each try a runner that dies at once
    assert wait_for(lambda: (status_of(root).get("watchdog") or {}).get("gave_up_at"), timeout=30)
    took = time.monotonic() - started
    st = status_of(root)
    assert st["state"] == "failed" and st["detail"].startswith("crash loop: gave up at ")
    assert f"{crashloop.MAX_CRASHES} crashes in 10 minutes" in st["detail"]
    # the history says "gave up" first, the journal a moment later: the last failed try, then the giving up
    assert wait_for(lambda: len([e for e in journal(root) if e["action"] == "runner.restarted"]) >= crashloop.MAX_CRASHES)
    events = [e for e in journal(root) if e["action"] == "runner.restarted"]
    assert [e["outcome"] for e in events] == ["failed"] * crashloop.MAX_CRASHES
    assert "gave up" in events[-1]["detail"] and "the model cannot load" in events[0]["detail"]
    assert 7 <= took < 30, took  # it waited between the tries: it did not spin
    log = (root / "models/echo/logs/1.0.0.log").read_text()
    assert log.count("the model cannot load") >= crashloop.MAX_CRASHES - 1
    assert "crash loop: the watchdog gave up" in log
    time.sleep(1.0)
    assert len([e for e in journal(root) if e["action"] == "runner.restarted"]) == len(events)  # no more tries
    assert refused(port)  # no copy kept for nobody to accept: refused, not a hang

    flag.unlink()  # the operator fixed it: `berth start` starts afresh
    result, error, _ = call(root, "start", model="echo")
    assert error is None and result["port"] == port
    st = status_of(root)
    assert st["state"] == "running" and "watchdog" not in st


def test_the_watchdog_waits_while_a_change_holds_the_server_lock(root, tmp_path):
    from app.agent import queries
    from app.agent.lock import ServerLock

    assert deploy(root, make_bundle(tmp_path / "v1"))[1] is None
    st = status_of(root)
    wait_guarded(root)
    r = Root(str(root))
    with ServerLock(r.lock, {"who": "alice@desk", "what": "deploy echo 2.0.0"}):
        os.kill(st["pid"], signal.SIGKILL)
        time.sleep(1.0)  # ten ticks: each finds the lock held and leaves the runner to the change
        assert queries.model_status(r.model("echo"))["state"] == "failed"
        assert not [e for e in journal(root) if e["action"] == "runner.restarted"]
    assert wait_for(lambda: [e for e in journal(root) if e["action"] == "runner.restarted"], timeout=BACK_WITHIN_S)
    assert http_json(st["port"], "GET", "/health")[0] == 200


def test_the_exit_waiter_wakes_when_a_process_ends_not_at_its_timeout():
    """What lets an idle watchdog tick once a second and still see a killed runner at once."""
    import subprocess
    import sys

    from app.agent.exitwait import ExitWaiter

    waiter = ExitWaiter()
    if not waiter.usable:
        pytest.skip("no pidfd_open here (Python 3.8, or a kernel before 5.3): the watchdog polls every TICK_S")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert waiter.watch([sleeper.pid, other.pid])
        assert waiter.wait(0.2) == []  # nothing ended: the whole timeout
        threading.Timer(0.3, sleeper.kill).start()
        started = time.monotonic()
        assert waiter.wait(30) == [sleeper.pid]
        assert time.monotonic() - started < 10
        sleeper.wait()
        assert waiter.watch([other.pid])  # the ended one forgotten, the other still watched
        assert list(waiter.fds) == [other.pid]
        assert not waiter.watch([other.pid, sleeper.pid])  # one that ended already: look again at once
    finally:
        for p in (sleeper, other):
            p.kill()
            p.wait()
        waiter.close()
    assert waiter.fds == {}


def test_the_runner_a_change_just_started_is_watched_at_once(root, tmp_path):
    """The change ends with `look` on the watchdog's control socket: the new runner is watched from
    then on, not from the idle tick (IDLE_S) after; killed at once, it is back on its port."""
    from app.agent import handoff

    assert deploy(root, make_bundle(tmp_path / "v1"))[1] is None
    wait_guarded(root)
    assert handoff.ask(endpoint.keeper_file(str(root / ".berth")), "look", timeout=2.0) == ("ok", None)
    assert deploy(root, make_bundle(tmp_path / "v2", version="2.0.0"))[1] is None
    st = status_of(root)
    os.kill(st["pid"], signal.SIGKILL)  # no wait: straight after the change
    assert wait_for(lambda: any(e["action"] == "runner.restarted" and e["outcome"] == "ok" for e in journal(root)),
                    timeout=15)
    back = status_of(root)
    assert back["version"] == "2.0.0" and back["pid"] != st["pid"] and back["port"] == st["port"]
    status, body = http_json(st["port"], "POST", "/predict", 1)
    assert status == 200, body
